"""Losses on the distance or margin between prediction and target: MAE, Huber, KL divergence, hinges.

Each takes probabilities or scores as they are (no logits form) and averages
over the batch as Keras' ``sum_over_batch_size`` does; ``n`` below is the number
of elements for the element-wise means, the number of samples for the row sums.
"""

from . import config
from .losses import Loss


class _RowLoss(Loss):
    """Shared plumbing: per-element work on y_true reshaped like y_pred; no logits form."""

    def loss_and_grad_from_output(self, y_true, y_pred):
        return self.value_and_grad(y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False), y_pred)

    loss_and_grad_from_logits = loss_and_grad_from_output

    def per_sample(self, y_true, y_pred):
        return self.rows(y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False), y_pred)

    def value_and_grad(self, y, y_pred):
        raise NotImplementedError


class MeanAbsoluteError(_RowLoss):
    """L = (1/n) Σ |ŷ − y|;  dŷ = sign(ŷ − y)/n."""

    name = "mean_absolute_error"

    def rows(self, y, y_pred):
        return self.ops.xp.abs(y_pred - y).mean(axis=-1)

    def value_and_grad(self, y, y_pred):
        diff = y_pred - y
        n = diff.size
        return self.ops.xp.abs(diff).sum() / n, self.ops.xp.sign(diff) / n


class Huber(_RowLoss):
    """e = ŷ − y;  L = (1/n) Σ (½e² if |e| ≤ δ else δ|e| − ½δ²);  dŷ = clip(e, −δ, δ)/n."""

    name = "huber_loss"

    def __init__(self, delta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.delta = float(delta)

    def _elements(self, e):
        a, d = self.ops.xp.abs(e), self.delta
        return self.ops.xp.where(a <= d, 0.5 * e * e, d * a - 0.5 * d * d)

    def rows(self, y, y_pred):
        return self._elements(y_pred - y).mean(axis=-1)

    def value_and_grad(self, y, y_pred):
        e = y_pred - y
        n = e.size
        return self._elements(e).sum() / n, self.ops.xp.clip(e, -self.delta, self.delta) / n

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class KLDivergence(_RowLoss):
    """L = (1/N) Σ y·log(y/ŷ), both clipped to [ε, 1] as Keras does;  dŷ = −y/(N·ŷ) where ŷ is not clipped."""

    name = "kl_divergence"

    def _clipped(self, y, y_pred):
        eps, xp = config.epsilon(), self.ops.xp
        return xp.clip(y, eps, 1), xp.clip(y_pred, eps, 1)

    def rows(self, y, y_pred):
        y, p = self._clipped(y, y_pred)
        return (y * self.ops.xp.log(y / p)).sum(axis=-1)

    def value_and_grad(self, y, y_pred):
        y, p = self._clipped(y, y_pred)
        n = y_pred.size // y_pred.shape[-1]
        grad = -y / p / n
        grad *= (y_pred > config.epsilon()) & (y_pred < 1)
        return (y * self.ops.xp.log(y / p)).sum() / n, grad


def _signed(xp, y):
    """Keras' hinge takes 0/1 labels as −1/+1; labels already ±1 (or any other values) stay as given."""
    return 2 * y - 1 if bool(((y == 0) | (y == 1)).all()) else y


class Hinge(_RowLoss):
    """L = (1/n) Σ max(1 − y·ŷ, 0) with y in {−1, 1};  dŷ = −y·[1 − y·ŷ > 0]/n."""

    name = "hinge"

    def rows(self, y, y_pred):
        y = _signed(self.ops.xp, y)
        return self.ops.xp.maximum(1 - y * y_pred, 0).mean(axis=-1)

    def value_and_grad(self, y, y_pred):
        y = _signed(self.ops.xp, y)
        margin = 1 - y * y_pred
        n = margin.size
        return self.ops.xp.maximum(margin, 0).sum() / n, -y * (margin > 0) / n


class CategoricalHinge(_RowLoss):
    """pos = Σ y·ŷ, neg = max (1 − y)·ŷ;  L = (1/N) Σ max(neg − pos + 1, 0);
    dŷ = [neg − pos + 1 > 0]·((1 − y)·[j = argmax (1 − y)·ŷ] − y)/N."""

    name = "categorical_hinge"

    def _parts(self, y, y_pred):
        xp = self.ops.xp
        others = (1 - y) * y_pred
        pos, neg = (y * y_pred).sum(axis=-1), others.max(axis=-1)
        return xp.maximum(neg - pos + 1, 0), others

    def rows(self, y, y_pred):
        return self._parts(y, y_pred)[0]

    def value_and_grad(self, y, y_pred):
        xp = self.ops.xp
        rows, others = self._parts(y, y_pred)
        n = rows.size
        k = y_pred.shape[-1]
        pick = xp.eye(k, dtype=y_pred.dtype)[others.reshape(-1, k).argmax(axis=-1)].reshape(y_pred.shape)
        grad = ((1 - y) * pick - y) * (rows > 0)[..., None] / n
        return rows.sum() / n, grad
