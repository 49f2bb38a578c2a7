"""``summary()`` of a graph model: Keras' columns, with what each layer call reads from."""


def _shape_text(shapes):
    texts = [str((None, *s)) for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def graph_summary(model):
    """The table as one string: layer (type), output shape, params, connected to."""
    refs, _ = model._node_refs()
    rows = []
    for layer in model.layers:
        mine = [(node, ref) for node, ref in zip(model.nodes, refs) if node.layer is layer]
        shapes = [t.shape[1:] for t in mine[0][0].outputs]
        sources = [f"{name}[{n}][{i}]" for _, ref in mine for name, n, i in ref] or ["-"]
        kind = "Functional" if getattr(layer, "nodes", None) is not None else type(layer).__name__
        params = layer.count_params()
        rows.append([f"{layer.name} ({kind})", _shape_text(shapes), f"{params:,}", sources])
    heads = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    widths = [max(len(heads[c]), *(len(r[c]) for r in rows)) + 2 for c in range(3)]
    widths.append(max(len(heads[3]), *(len(s) + 1 for r in rows for s in r[3])))
    line = "".join(h.ljust(w) for h, w in zip(heads, widths))
    rule = "=" * len(line)
    out = [f'Model: "{model.name}" on {model.backend.describe()}', rule, line, rule]
    for r in rows:
        for j, src in enumerate(r[3]):  # one line per input a layer reads, as Keras does
            cells = r[:3] if j == 0 else ["", "", ""]
            sep = "," if j < len(r[3]) - 1 else ""
            out.append("".join(c.ljust(w) for c, w in zip(cells, widths)) + src + sep)
    trainable = sum(int(p.size) for layer in _leaves(model) for p in layer.params.values())
    total = model.count_params()
    out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}"]
    return "\n".join(out)


def _leaves(model):
    from .nested import leaf_layers

    return leaf_layers(model.layers)
