"""Guards that teach: spec checks beyond the schema (run by the loader, TensorFlow-free).

:func:`lint_spec` raises :class:`SpecError` for combinations that cannot be right (softmax
applied twice, softmax over one unit, a fixed image filter on a dense layer, maxout pieces
that do not divide the units, ``data.groups`` or the group-aware metrics without the
``label_columns`` loss) and returns warnings, each starting with its spec path, for ones
that are probably wrong (a probability loss on an output without a matching
activation, constant initializers on hidden layers, an initializer that does not suit its
activation, Poisson or hinge losses on outputs of the wrong range, groups that no metric
reads).

Example:
    >>> from kspec.validation import load_spec
    >>> spec = {"model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh",
    ...                               "kernel_initializer": "he_normal"},
    ...                              {"type": "dense", "units": 1, "activation": "sigmoid"}]},
    ...         "training": {"loss": "binary_crossentropy"}}
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = load_spec(spec)
    >>> str(caught[0].message).split(":")[0]
    'model.layers[0].kernel_initializer'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from kspec import registry
from kspec.errors import SpecError

# Layers that pass values through without changing what range they lie in.
_NEUTRAL = {"dropout", "flatten", "reshape", "max_pool1d", "max_pool2d", "global_max_pool",
            "avg_pool1d", "avg_pool2d", "global_avg_pool"}
# Layers between a weighted layer and the activation layer that follows it.
_BETWEEN = {"batch_norm", "dropout"}
_WEIGHTED = {"dense", "conv1d", "conv2d"}


@dataclass
class _Act:
    """The activation that ends (part of) a stack, and where it is written."""

    name: str | None  # canonical registry name; None when it cannot be known
    path: str
    params: dict
    units: int | None  # width of the layer it applies to, when known


def lint_spec(spec: Any) -> list[str]:
    """Check ``spec``; return warning messages (each starting with its spec path).

    Raises:
        SpecError: a combination that cannot train correctly.
    """
    registry.load_builtins()
    found: list[str] = []
    model = spec.model
    outputs = _output_acts(model)
    output_layer_paths = {a.path.rsplit(".", 1)[0] for a in outputs.values() if a}
    for path, stack in _stacks(model):
        _check_stack(stack, path, output_layer_paths, found)
    _check_losses(spec, outputs, found)
    _check_weighting(spec, outputs)
    _check_groups(spec, outputs, found)
    _check_metrics(spec, outputs)
    return found


def _metric_refs(spec, output: str) -> list[tuple[Any, str]]:
    metrics = spec.training.metrics
    if isinstance(metrics, dict):
        return [(m, f"training.metrics.{output}[{i}]")
                for i, m in enumerate(metrics.get(output, []))]
    return [(m, f"training.metrics[{i}]") for i, m in enumerate(metrics)]


def _check_metrics(spec, outputs: dict[str, _Act | None]) -> None:
    """Fairness metrics read the group from the last target column, so they need the loss
    that expects it (plain metrics beside them are compiled to skip that column). Class
    counts must match the output."""
    losses = _losses(spec)
    for out_name, (ref, path) in losses.items():
        loss = registry.LOSSES.split_ref(ref, path)[0]
        packed = "packed_groups" in loss.tags
        for mref, mpath in _metric_refs(spec, out_name):
            entry, params = registry.METRICS.split_ref(mref, mpath)
            if "packed_groups" in entry.tags and not packed:
                raise SpecError(mpath, f"{entry.name!r} reads each example's group from the "
                                "last target column, but the loss does not expect that column",
                                value=entry.name, valid=f"loss: {{type: label_columns, loss: "
                                f"{loss.name}}} with targets from pack_groups(labels, groups)")
            _check_classes(entry, params, mpath, outputs.get(out_name))
            group, groups = params.get("group", 0), params.get("num_groups", 2)
            if isinstance(group, int) and isinstance(groups, int) and not 0 <= group < groups:
                raise SpecError(f"{mpath}.group", f"group {group} does not exist with "
                                f"num_groups {groups}", value=group,
                                valid=f"0 .. {groups - 1} (or raise num_groups)")


def _check_groups(spec, outputs: dict, found: list[str]) -> None:
    """``data.groups``, the ``label_columns`` loss and the group-aware metrics go together:
    kspec packs the group into the targets only when the spec says where it comes from."""
    groups = getattr(spec.data, "groups", None)
    readers = [(m, mpath) for out in outputs for m, mpath in _metric_refs(spec, out)
               if "packed_groups" in registry.METRICS.split_ref(m, mpath)[0].tags]
    if groups is None:
        if readers and spec.data.source is not None:
            name = registry.METRICS.split_ref(*readers[0])[0].name
            raise SpecError(readers[0][1], f"{name!r} reads each example's group, but the "
                            "spec does not say where the group comes from", value=name,
                            valid="data.groups: {column: NAME} (csv, dataframe), {array: KEY} "
                            "(npz) or {feature: NAME|INDEX}")
        return
    if len(outputs) != 1:
        raise SpecError("data.groups", "groups are packed into the targets of a model with one "
                        f"output; this one has {sorted(outputs)}", value=groups.where(),
                        valid="a single-output model")
    t = spec.training
    if t.targets:
        raise SpecError("data.groups", "groups cannot be combined with training.targets (the "
                        "derived targets would lose the group column)", value=groups.where(),
                        valid="labels as the source gives them")
    if t.class_weight is not None:
        raise SpecError("training.class_weight", "class weights read the class from the "
                        "targets, which data.groups packs with the group", value=t.class_weight,
                        valid="no class_weight with data.groups")
    losses = list(_losses(spec).values())
    if not losses:  # `loss: {}` names no output; compiling says so with the outputs
        return
    ref, path = losses[0]
    loss = registry.LOSSES.split_ref(ref, path)[0]
    if "packed_groups" not in loss.tags:
        raise SpecError(path, f"data.groups packs each row's group into the targets, and "
                        f"{loss.name!r} would read it as part of the label", value=loss.name,
                        valid=f"{{type: label_columns, loss: {loss.name}}}")
    if not readers:
        found.append(f"data.groups: the {groups.where()} is packed into the targets, but no "
                     "metric reads it; add subgroup_accuracy, subgroup_accuracy_gap or "
                     "statistical_parity to training.metrics")


def _check_classes(entry, params: dict, mpath: str, act: _Act | None) -> None:
    units = act.units if act is not None else None
    if not units or units < 2:
        return  # one unit: a thresholded binary output, two classes
    accepted = entry.accepted_params() or frozenset()
    if "num_classes" in accepted and params.get("num_classes", 2) != units:
        raise SpecError(f"{mpath}.num_classes" if "num_classes" in params else mpath,
                        f"{entry.name!r} counts {params.get('num_classes', 2)} classes but the "
                        f"output has {units} units", value=params.get("num_classes", 2),
                        valid=f"num_classes: {units}")
    class_id = params.get("class_id")
    if entry.name == "per_class_accuracy" and isinstance(class_id, int) and class_id >= units:
        raise SpecError(f"{mpath}.class_id", f"class {class_id} does not exist: the output has "
                        f"{units} units", value=class_id, valid=f"0 .. {units - 1}")


def _check_weighting(spec, outputs: dict) -> None:
    t = spec.training
    if getattr(t, "loss_weighting", "fixed") != "uncertainty":
        return
    if len(outputs) < 2:
        raise SpecError("training.loss_weighting", "uncertainty weighting balances the losses "
                        "of several outputs; this model has one", value="uncertainty",
                        valid="fixed, or a graph model with two or more outputs")
    if t.loss_weights:
        raise SpecError("training.loss_weights", "fixed loss_weights cannot be combined with "
                        "loss_weighting: uncertainty (the weights are learned)",
                        value=t.loss_weights)


# -- walking the model ---------------------------------------------------------------------
def _stacks(model) -> Iterator[tuple[str, list]]:
    """Every layer list of the model with its path (stack form, blocks, definitions)."""
    if getattr(model, "layers", None):
        yield "model.layers", list(model.layers)
    for name, definition in (getattr(model, "definitions", None) or {}).items():
        yield f"model.definitions.{name}.layers", list(definition.layers)
    for j, block in enumerate(getattr(model, "blocks", None) or []):
        if block.layers:
            yield f"model.blocks[{j}].layers", list(block.layers)


def _activation_of(ref: Any, path: str, units: int | None) -> _Act:
    if ref is None:
        return _Act("linear", path, {}, units)
    entry, params = registry.ACTIVATIONS.split_ref(ref, path)
    return _Act(entry.name, path, params, units)


def _width(layer) -> int | None:
    return getattr(layer, "units", None) or getattr(layer, "filters", None)


def _final_activation(stack: list, path: str) -> _Act | None:
    """The activation that produces the stack's output, looking past dropout/flatten."""
    units = None
    for i in range(len(stack) - 1, -1, -1):
        layer, lpath = stack[i], f"{path}[{i}]"
        kind = layer.type
        if kind in _NEUTRAL:
            continue
        if kind == "activation":
            before = _previous_weighted(stack, i)
            return _activation_of(layer.activation, f"{lpath}.activation",
                                  _width(before) if before is not None else None)
        if kind in _WEIGHTED:
            return _activation_of(layer.activation, f"{lpath}.activation", units or _width(layer))
        return None  # batch norm, embedding, user layers: no known output range
    return None


def _previous_weighted(stack: list, i: int):
    for j in range(i - 1, -1, -1):
        if stack[j].type in _WEIGHTED:
            return stack[j]
        if stack[j].type not in _BETWEEN:
            return None
    return None


def _output_acts(model) -> dict[str, _Act | None]:
    names = model.output_names() if hasattr(model, "output_names") else [model.output_name]
    out = {}
    for name in names:
        located = model.output_stack(name)
        out[name] = _final_activation(located[1], located[0]) if located else None
    return out


# -- layer checks --------------------------------------------------------------------------
def _tags(reg, ref: Any) -> tuple[str, frozenset[str], dict]:
    entry, params = reg.split_ref(ref, "")
    return entry.name, entry.tags, params


def _effective_activation(stack: list, i: int, path: str) -> _Act:
    """A weighted layer's own activation, or the activation layer right after it."""
    layer = stack[i]
    if layer.activation is not None:
        return _activation_of(layer.activation, f"{path}[{i}].activation", _width(layer))
    for j in range(i + 1, len(stack)):
        if stack[j].type == "activation":
            return _activation_of(stack[j].activation, f"{path}[{j}].activation", _width(layer))
        if stack[j].type not in _BETWEEN:
            break
    return _Act("linear", f"{path}[{i}].activation", {}, _width(layer))


def _check_stack(stack: list, path: str, output_layers: set[str], found: list[str]) -> None:
    for i, layer in enumerate(stack):
        lpath = f"{path}[{i}]"
        if layer.type == "activation":
            before = _previous_weighted(stack, i)
            _check_activation(_activation_of(layer.activation, f"{lpath}.activation",
                                             _width(before) if before is not None else None))
            continue
        if layer.type not in _WEIGHTED:
            continue
        act = _effective_activation(stack, i, path)
        if layer.activation is not None:
            _check_activation(act)
        _check_initializer(layer, lpath, act, lpath in output_layers or
                           act.path.rsplit(".", 1)[0] in output_layers, found)


def _check_activation(act: _Act) -> None:
    if act.name == "softmax" and act.units == 1:
        raise SpecError(act.path, "softmax over a single unit is always 1.0, so nothing can "
                        "be learned", value="softmax",
                        valid="sigmoid for one unit (binary), or one unit per class with softmax")
    if act.name == "maxout" and act.units is not None:
        pieces = act.params.get("pieces", 2)
        if isinstance(pieces, int) and pieces >= 1 and act.units % pieces:
            raise SpecError(f"{act.path}.pieces" if "pieces" in act.params else act.path,
                            f"maxout with {pieces} pieces needs units/filters divisible by "
                            f"{pieces}, but the layer has {act.units}",
                            valid=f"units/filters = outputs x {pieces}")


def _check_initializer(layer, lpath: str, act: _Act, is_output: bool, found: list[str]) -> None:
    ipath = f"{lpath}.kernel_initializer"
    name, tags, params = _tags(registry.INITIALIZERS, layer.kernel_initializer)
    # Glorot-uniform is Keras's default: a resolved spec (defaults written out) names it on
    # every layer, so only a Glorot variant someone picked on purpose is questioned.
    chosen = "kernel_initializer" in layer.model_fields_set and name != "glorot_uniform"
    if "fixed_kernel" in tags:
        if layer.type != "conv2d":
            raise SpecError(ipath, f"{name!r} is an image filter for conv2d kernels; this is a "
                            f"{layer.type} layer", value=name,
                            valid="a random initializer such as glorot_uniform or he_normal")
        from kspec.kernels import check_size

        size = layer.kernel_size if isinstance(layer.kernel_size, list) else [layer.kernel_size] * 2
        problem = check_size(name, *size[:2])
        if problem:
            raise SpecError(f"{lpath}.kernel_size", problem, value=layer.kernel_size)
        return
    if "dense_only" in tags and layer.type != "dense":
        raise SpecError(ipath, f"{name!r} builds a 2-D identity matrix; a {layer.type} kernel "
                        "has more dimensions", value=name,
                        valid="identity_kernel (a conv kernel that passes its input through)")
    if "constant" in tags and not is_output:
        better = "he_normal" if "relu_like" in _act_tags(act) else "glorot_uniform"
        found.append(f"{ipath}: {name!r} starts every unit of this hidden layer with the same "
                     "weights, so they all get the same gradient and stay identical (symmetry "
                     f"is never broken); use a random initializer such as {better}")
        return
    act_tags = _act_tags(act)
    if "he" in tags and "saturating" in act_tags:
        found.append(f"{ipath}: {name!r} is scaled for ReLU-like activations (variance "
                     f"2/fan_in); with {act.name!r} ({act.path}) use glorot_uniform or "
                     "glorot_normal, which keep tanh/sigmoid out of saturation")
    elif chosen and "glorot" in tags and "relu_like" in act_tags:
        found.append(f"{ipath}: {name!r} is scaled for tanh/sigmoid; with {act.name!r} "
                     f"({act.path}) the units pass only part of their input on, so he_normal or "
                     "he_uniform (variance 2/fan_in) keeps the signal from shrinking layer "
                     "after layer")
    elif "self_normalizing" in act_tags and "lecun" not in tags:
        found.append(f"{ipath}: 'selu' self-normalizes only with lecun_normal weights "
                     f"(received {name!r})")


def _act_tags(act: _Act) -> frozenset[str]:
    if act.name is None or act.name not in registry.ACTIVATIONS:
        return frozenset()
    return registry.ACTIVATIONS.get(act.name).tags


# -- loss checks ---------------------------------------------------------------------------
def _losses(spec) -> dict[str, tuple[Any, str]]:
    loss = spec.training.loss
    names = list(_output_acts(spec.model))
    if isinstance(loss, dict) and "type" not in loss:
        return {n: (ref, f"training.loss.{n}") for n, ref in loss.items()}
    return {n: (loss, "training.loss") for n in names}


def _check_losses(spec, outputs: dict[str, _Act | None], found: list[str]) -> None:
    for out_name, (ref, path) in _losses(spec).items():
        entry, params = registry.LOSSES.split_ref(ref, path)
        if "packed_groups" in entry.tags:  # a wrapper: check the loss it wraps
            inner = params.get("loss", "binary_crossentropy")
            path = f"{path}.loss"
            entry, params = registry.LOSSES.split_ref(inner, path)
        act = outputs.get(out_name)
        if act is None or act.name is None:
            continue
        _check_loss(entry, params, path, act, found)


def _check_loss(entry, params: dict, path: str, act: _Act, found: list[str]) -> None:
    tags, atags, loss = entry.tags, _act_tags(act), entry.name
    logits = bool(params.get("from_logits", False))
    probability_act = "probability" in atags
    if "probability" in tags and logits and probability_act:
        raise SpecError(
            f"{path}.from_logits",
            f"the output already applies {act.name!r} ({act.path}) and {loss!r} with "
            f"from_logits: true applies {'sigmoid' if 'binary' in tags else 'softmax'} again "
            "(applied twice: the probabilities are squashed and training stalls)",
            value=True, valid="from_logits: false, or a linear output activation")
    if "probability" in tags and not logits and not probability_act:
        want = "sigmoid" if "binary" in tags else "softmax"
        found.append(f"{path}: {loss!r} expects probabilities, but the output activation is "
                     f"{act.name!r} ({act.path}); use activation: {want}, or keep the linear "
                     "output and set from_logits: true")
    elif "multiclass" in tags and act.name in ("sigmoid", "hard_sigmoid") and (act.units or 0) > 1:
        found.append(f"{path}: {loss!r} treats the classes as exclusive, but {act.path} is "
                     f"{act.name!r}, whose outputs do not sum to 1; use softmax")
    if "sparse" in tags and act.units == 1:
        raise SpecError(path, f"{loss!r} needs one output unit per class, but the output "
                        f"layer ({act.path.rsplit('.', 1)[0]}) has 1 unit", value=loss,
                        valid="binary_crossentropy with a sigmoid unit, or units: N_CLASSES")
    if "signed_labels" in tags and probability_act:
        found.append(f"{path}: {loss!r} expects raw scores and labels in {{-1, 1}}, but the "
                     f"output applies {act.name!r} ({act.path}); use a linear output")
    if "counts" in tags and "positive" not in atags:
        found.append(f"{path}: {loss!r} takes log(y_pred), which needs positive predictions; "
                     f"the output activation {act.name!r} ({act.path}) can be <= 0: use "
                     "exponential or softplus")
    if "distribution" in tags and act.name != "softmax":
        found.append(f"{path}: {loss!r} compares probability distributions; the output "
                     f"activation {act.name!r} ({act.path}) does not make rows sum to 1: use "
                     "softmax")
