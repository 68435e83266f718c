"""Transfer bases: a saved model, an earlier run or a keras.applications architecture.

The base is loaded (Keras ``safe_mode``), optionally cut at a named layer ("chop off the
final layers"), and inserted into the new model as one nested layer named after its block
(``base`` in the stack form), so training phases can freeze and unfreeze it by name.

The batch-norm layers of a base that starts frozen stay frozen, and so in inference mode,
in every training phase, also when the rest of the base is unfrozen for fine-tuning (the
Keras transfer-learning guide's advice: updating BN statistics on a small new dataset
destroys what was learned). See ``kspec.train.phases.keep_batch_norm_frozen``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from kspec.errors import SpecError, first_line, suggest
from kspec.rundir import RunDir

# Folders in which `base: {run: NAME}` looks for runs. `kspec.fit(out=...)` puts its own
# output folder first, so a fine-tune spec finds the pre-training run of the same session.
_RUN_ROOTS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "kspec_run_roots", default=("runs",))


# Bases already resolved by an earlier attempt of the same run (resume): spec path -> path.
_PINNED: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "kspec_pinned_bases", default={})


@contextlib.contextmanager
def run_roots(*roots: str | Path, pinned: dict[str, str] | None = None) -> Iterator[None]:
    """Look for ``base: {run: NAME}`` runs in ``roots`` (then ``runs``) inside this block.

    Args:
        roots: folders holding run directories, searched first.
        pinned: ``{"model.base": "/path/to/run"}``: use these resolutions as they are (a
            resumed run keeps the base it started from).

    Example:
        >>> with run_roots("/tmp/my_runs"):
        ...     spec, data, model = prepare("specs/transfer_2_finetune.yaml")  # doctest: +SKIP
    """
    seen = dict.fromkeys([*(str(r) for r in roots), *_RUN_ROOTS.get()])
    token = _RUN_ROOTS.set(tuple(seen))
    pin = _PINNED.set({**_PINNED.get(), **(pinned or {})})
    try:
        yield
    finally:
        _RUN_ROOTS.reset(token)
        _PINNED.reset(pin)


def resolved_bases(spec: Any) -> dict[str, str]:
    """Where each saved-model base of ``spec`` comes from: ``{spec path: file or folder}``.

    Recorded in a run's ``meta.json``, so the run says exactly which model it started from.
    """
    out = {}
    model = spec.model
    bases = [(f"model.blocks[{i}].base", b.base) for i, b in enumerate(model.blocks)
             if b.base is not None]
    if model.base is not None:
        bases.append(("model.base", model.base))
    for path, base in bases:
        if base.application is None:
            file, _ = resolve(base, path)
            out[path] = str(Path(file).resolve())
    return out


def find_run(name: str, path: str = "model.base.run") -> Path:
    """The newest finished run directory of the spec called ``name``.

    Raises:
        SpecError: no finished run with a saved model; says which spec to fit first.
    """
    found: list[tuple[str, Path]] = []
    roots = _RUN_ROOTS.get()
    for root in roots:
        root_path = Path(root)
        if not root_path.is_dir():
            continue
        for d in root_path.iterdir():
            run = RunDir(d)
            if not (d.is_dir() and RunDir.matches(d, name) and run.has_model()):
                continue
            meta = run.read_meta()
            if meta.get("status") == "finished":
                found.append((str(meta.get("ended", "")) + d.name, d))
    if not found:
        spec_file = _spec_file_named(name)
        how = (f"fit it first: `kspec fit {spec_file}`" if spec_file
               else f"fit the spec named {name!r} first")
        raise SpecError(
            path, f"no finished run of spec {name!r} in {', '.join(map(repr, roots))}; {how}",
            value=name, valid="a spec name with a finished run, a run directory, a .keras file "
            "or a SavedModel directory")
    return max(found)[1]


def _spec_file_named(name: str) -> str | None:
    """A spec file in ``specs/`` or the current folder whose ``name:`` is ``name``."""
    line = re.compile(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", re.M)
    for folder in (Path("specs"), Path(".")):
        for file in sorted(folder.glob("*.y*ml")):
            try:
                if line.search(file.read_text(encoding="utf-8")):
                    return str(file)
            except OSError:
                continue
    return None


def resolve(base: Any, path: str) -> tuple[Path, str]:
    """Where a base's model is: ``(path, kind)`` with kind ``keras`` or ``savedmodel``."""
    key = "run" if base.run is not None else "path"
    value = base.run if base.run is not None else base.path
    where = f"{path}.{key}"
    pinned = _PINNED.get().get(path)
    if pinned is not None and Path(pinned).exists():
        value = pinned
    p = Path(value).expanduser()
    if not p.exists():
        if key == "run" and "/" not in value and not value.endswith(".keras"):
            p = find_run(value, where)
        else:
            raise SpecError(where, f"not found: {value}", value=value,
                            valid="a .keras file, a SavedModel directory or a run directory")
    if p.is_file():
        if p.suffix != ".keras":
            raise SpecError(where, f"{value} is not a .keras model file", value=value,
                            valid="a .keras file, a SavedModel directory or a run directory")
        return p, "keras"
    if RunDir(p).has_model():
        return RunDir(p).model_file, "keras"
    if (p / "saved_model.pb").is_file():
        return p, "savedmodel"
    raise SpecError(where, f"{value} holds no model (no model.keras, no saved_model.pb)",
                    value=value, valid="a .keras file, a SavedModel directory or a run directory")


def load_source(base: Any, path: str, input_shape: Sequence[int | None]):
    """The full base model before cutting (``keras.Model``), or a TFSMLayer."""
    from kspec.compiler.loading import ModelFileError, load_model, savedmodel_layer

    if base.application is not None:
        return _application(base, path, input_shape)
    file, kind = resolve(base, path)
    if kind == "savedmodel" and base.cut_at is not None:
        raise SpecError(f"{path}.cut_at", "a SavedModel is one opaque function and cannot "
                        "be cut; use the .keras file or the kspec run directory",
                        value=base.cut_at)
    try:
        if kind == "savedmodel":
            # TFSMLayer wraps the serving signature; it can be frozen or trained as a whole.
            return savedmodel_layer(file, call_endpoint="serving_default",
                                    trainable=base.trainable)
        return load_model(file, compile=False)
    except ModelFileError as e:  # the file says what is wrong; the spec path says where
        raise SpecError(path, f"cannot load the base model: {e}") from e


def _application(base: Any, path: str, input_shape: Sequence[int | None]):
    import keras

    weights = base.weights
    if weights is not None and not Path(weights).expanduser().is_file():
        raise SpecError(f"{path}.weights", f"weights file not found: {weights}",
                        valid="a local weights file (kspec never downloads), or null")
    factory = getattr(keras.applications, base.application)
    try:
        model = factory(include_top=base.include_top, weights=None,
                        input_shape=tuple(input_shape), pooling=base.pooling, **base.options)
        if weights is not None:
            model.load_weights(str(Path(weights).expanduser()))
    except (ValueError, TypeError, OSError, KeyError) as e:
        raise SpecError(path, f"cannot build {base.application} on inputs of shape "
                        f"{tuple(input_shape)}: {first_line(e)}") from e
    return model


def cut(model: Any, layer_name: str | None, path: str, name: str):
    """``model`` up to and including ``layer_name`` (all of it when None), named ``name``."""
    import keras

    if layer_name is None:
        outputs = model.outputs
    else:
        names = [layer.name for layer in model.layers]
        if layer_name not in names:
            raise SpecError(f"{path}.cut_at", f"the base has no layer {layer_name!r}",
                            value=layer_name, valid=names, hint=suggest(layer_name, names))
        try:
            outputs = model.get_layer(layer_name).output
        except (ValueError, AttributeError) as e:
            raise SpecError(f"{path}.cut_at", f"cannot cut at {layer_name!r}: "
                            f"{first_line(e)}") from e
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    return keras.Model(inputs, outputs, name=name)


def build_base(base: Any, xs: list, path: str, name: str):
    """Apply the transfer base to the tensors ``xs``; returns the base's output tensor."""
    import keras

    shape = tuple(xs[0].shape[1:])
    source = load_source(base, path, shape)
    if isinstance(source, keras.layers.TFSMLayer):
        source.name = name
        y = source(xs[0] if len(xs) == 1 else xs)
        if isinstance(y, dict):
            if len(y) != 1:
                raise SpecError(path, f"the SavedModel returns several outputs {sorted(y)}; "
                                "use the .keras file or the kspec run to cut at one layer")
            y = next(iter(y.values()))
        return y
    from kspec.compiler.origins import remember
    from kspec.compiler.precision import under_global_policy

    # A saved base keeps the dtype policy it was saved with; it follows training.precision.
    sub = remember(cut(under_global_policy(source), base.cut_at, path, name), path)
    _check_inputs(sub, xs, path)
    sub.trainable = base.trainable
    # No `training=False` here: Keras 3's fit overrides it (keras-team/keras#20285); frozen
    # batch norm (trainable=False) is what keeps a base's statistics fixed.
    return sub(xs[0] if len(xs) == 1 else xs)


def _check_inputs(sub: Any, xs: list, path: str) -> None:
    if len(sub.inputs) != len(xs):
        raise SpecError(path, f"the base takes {len(sub.inputs)} input(s) but gets {len(xs)}")
    for k, (want, got) in enumerate(zip(sub.inputs, xs)):
        a, b = tuple(want.shape[1:]), tuple(got.shape[1:])
        if len(a) != len(b) or any(p is not None and q is not None and p != q
                                   for p, q in zip(a, b)):
            raise SpecError(path, f"the base expects input {k} of shape {a} but receives "
                            f"{b}", valid=f"inputs of shape {a} (check model.inputs and the "
                            "layers before the base)")
