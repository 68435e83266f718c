"""Training: compile, fit, run directories."""
