from kspec.cli import console

console()
