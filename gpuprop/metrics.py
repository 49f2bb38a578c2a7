"""Metrics computed on the device, accumulated without reading them back each step."""

KNOWN = {"accuracy", "acc"}


def label_targets(xp, y, loss_name):
    """What accuracy compares against: class indices for softmax losses, 0/1 values for binary."""
    if loss_name == "binary_crossentropy":
        return y.reshape(y.shape[0], -1)
    if y.ndim > 1 and y.shape[-1] > 1:
        return y.argmax(axis=-1)
    return y.reshape(-1)


def correct_count(xp, out, labels, loss_name, logits):
    """Number of correct predictions in the batch, as a 0-d device array.

    Softmax outputs and logits share their argmax; for binary outputs the
    threshold is 0 on logits and 0.5 on probabilities.
    """
    if loss_name == "binary_crossentropy":
        pred = out > (0 if logits else 0.5)
        return (pred == (labels > 0.5)).sum() / labels.shape[1]
    if out.ndim > 1 and out.shape[-1] > 1:
        return (out.argmax(axis=-1) == labels).sum()
    return (xp.rint(out.reshape(-1)) == labels).sum()
