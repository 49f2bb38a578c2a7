"""Drawing a model's layer graph with matplotlib alone (what ``utils.plot_model`` writes)."""

import os
import tempfile

BOX_HALF_HEIGHT = 0.28  # in layout units, where levels are 1 apart: arrows start and end at the box edges


def model_graph(model):
    """(boxes, edges): one box per layer call, each a (name, layer or None, shape); edges as index pairs.

    A graph model (``Model``) gives its calls in topological order, Input layers included;
    a ``Sequential`` is a chain from an input box through its layers.
    """
    if not model.built:
        model.build()
    nodes = getattr(model, "nodes", None)
    if nodes is not None:
        index = {id(n): i for i, n in enumerate(nodes)}
        boxes = [(n.layer.name, n.layer, n.outputs[0].shape[1:] if n.outputs else None) for n in nodes]
        edges = [(index[id(t.node)], index[id(n)]) for n in nodes for t in n.inputs if id(t.node) in index]
        return boxes, edges
    first = model.layers[0]
    boxes = [("input_layer", None, first.input_shape)] + [(layer.name, layer, layer.output_shape)
                                                          for layer in model.layers]
    return boxes, [(i, i + 1) for i in range(len(boxes) - 1)]


def _label(name, layer, shape, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable):
    kind = "InputLayer" if layer is None else type(layer).__name__
    lines = [f"{name} ({kind})" if show_layer_names else kind]
    if show_shapes and shape is not None:
        lines.append(f"Output shape: {(None, *shape)}")
    if show_dtype and layer is not None and layer.dtype is not None:
        lines.append(f"dtype: {layer.dtype}")
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        lines.append(f"Activation: {getattr(activation, 'kind', activation)}")
    if show_trainable and layer is not None:
        lines.append(f"Trainable: {bool(getattr(layer, 'params', None))}")
    return "\n".join(lines)


def _levels(n, edges):
    """Each box's level: the longest path to it from a box with no inputs."""
    level = [0] * n
    for src, dst in sorted(edges, key=lambda e: e[1]):  # boxes come in topological order
        level[dst] = max(level[dst], level[src] + 1)
    return level


def model_figure(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 show_layer_activations=False, show_trainable=False):
    """A matplotlib Figure of the model: a box per layer call, an arrow per connection."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' (top to bottom) or 'LR' (left to right), got {rankdir!r}")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot_model draws with matplotlib, which is not installed: "
                          "pip install 'gpuprop[plot]'") from None
    boxes, edges = model_graph(model)
    level = _levels(len(boxes), edges)
    rows = {}
    for i, lv in enumerate(level):
        rows.setdefault(lv, []).append(i)
    spread = 3.2  # layout units between neighbours on one level
    pos = {}
    for lv, members in rows.items():
        for k, i in enumerate(members):
            across = (k - (len(members) - 1) / 2) * spread
            pos[i] = (across, -lv) if rankdir == "TB" else (lv * spread * 1.4, -across / spread)
    widest = max(len(m) for m in rows.values())
    depth = len(rows)
    size = (max(4.0, 3.2 * widest), max(2.0, 1.1 * depth)) if rankdir == "TB" else (4.5 * depth, max(2.0, 1.2 * widest))
    fig = Figure(figsize=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    for i, (name, layer, shape) in enumerate(boxes):
        text = _label(name, layer, shape, show_shapes, show_dtype, show_layer_names, show_layer_activations,
                      show_trainable)
        ax.text(*pos[i], text, ha="center", va="center", fontsize=8, gid=f"layer:{name}",
                bbox=dict(boxstyle="round,pad=0.4", facecolor="#e8f0fe", edgecolor="#3c4a61"))
    for src, dst in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        if rankdir == "TB":
            y0, y1 = y0 - BOX_HALF_HEIGHT, y1 + BOX_HALF_HEIGHT
        else:
            x0, x1 = x0 + 1.3, x1 - 1.3
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), gid="edge",
                    arrowprops=dict(arrowstyle="->", color="#3c4a61", lw=1.0))
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - spread / 2, max(xs) + spread / 2)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    return fig


def save_figure(fig, to_file, dpi):
    """Write ``fig`` to ``to_file`` in the format its suffix names, atomically (a temporary file renamed)."""
    to_file = os.fspath(to_file)
    suffix = os.path.splitext(to_file)[1].lstrip(".").lower()
    formats = fig.canvas.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(f"cannot tell the image format from {to_file!r}: end the name with one of "
                         f"{', '.join('.' + f for f in sorted(formats))} (e.g. model.png)")
    folder = os.path.dirname(os.path.abspath(to_file))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="." + suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=suffix, dpi=dpi)
        os.replace(tmp, to_file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
