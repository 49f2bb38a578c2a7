"""An independent oracle for graph models: the same graph rebuilt from torch operations.

``torch_loss(model, xs, ys)`` walks a gpuprop model's recorded calls and
computes each layer's forward with torch functions (its weights copied into
torch leaf tensors, one set per layer object, so a shared layer accumulates
its gradient in torch as well). Autograd then gives the gradients that
gpuprop's hand-written backward must match. Nothing here calls gpuprop's
forward or backward.
"""

import numpy as np

from gpuprop import layers as L
from gpuprop.models import Model, Sequential
from gpuprop.models.nested import NestedModel


class TorchGraph:
    def __init__(self, torch):
        self.torch = torch
        self.F = torch.nn.functional
        self.params = {}  # id(layer) -> {name: torch leaf}
        self.layers = {}

    def weights(self, layer):
        if id(layer) not in self.params:
            self.layers[id(layer)] = layer
            self.params[id(layer)] = {
                k: self.torch.tensor(layer.backend.to_host(v).astype(np.float64), requires_grad=k in layer.params)
                for k, v in (*layer.params.items(), *layer.state.items())}
        return self.params[id(layer)]

    def model(self, model, xs):
        env = {id(t): x for t, x in zip(model.inputs, xs)}
        for node in model.nodes:
            if isinstance(node.layer, L.InputLayer):
                continue
            ins = [env[id(t)] for t in node.inputs]
            outs = self.call(node.layer, ins if node.multi_input else ins[0])
            env.update({id(t): o for t, o in zip(node.outputs, outs)})
        return [env[id(t)] for t in model.outputs]

    def call(self, layer, x):
        """The layer's output(s) as a list of torch tensors."""
        if isinstance(layer, NestedModel):
            layer = layer.model
        if isinstance(layer, Model):
            return self.model(layer, x if isinstance(x, list) else [x])
        if isinstance(layer, Sequential):
            for inner in layer.layers:
                x = self.call(inner, x)[0]
            return [x]
        y = self.primitive(layer, x)
        if layer.activation is not None:
            y = self.activation(layer.activation.kind, y)
        return [y]

    def activation(self, kind, x):
        t, F = self.torch, self.F
        return {"relu": F.relu, "tanh": t.tanh, "sigmoid": t.sigmoid, "linear": lambda v: v,
                "softmax": lambda v: t.softmax(v, dim=-1), "gelu": lambda v: F.gelu(v),
                "leaky_relu": lambda v: F.leaky_relu(v, 0.2)}[kind](x)

    def primitive(self, layer, x):
        t, F = self.torch, self.F
        w = self.weights(layer)
        if isinstance(layer, L.Dense):
            y = x @ w["kernel"]
            return y + w["bias"] if "bias" in w else y
        if isinstance(layer, L.Activation):
            return self.activation(layer.kind, x)
        if isinstance(layer, L.LeakyReLU):
            return F.leaky_relu(x, layer.negative_slope)
        if isinstance(layer, L.Rescaling):
            return x * layer.scale + layer.offset
        if isinstance(layer, L.Add):
            return sum(x[1:], x[0])
        if isinstance(layer, L.Subtract):
            return x[0] - x[1]
        if isinstance(layer, L.Multiply):
            y = x[0]
            for v in x[1:]:
                y = y * v
            return y
        if isinstance(layer, L.Average):
            return sum(x[1:], x[0]) / len(x)
        if isinstance(layer, L.Maximum):
            return t.stack(x).amax(dim=0)
        if isinstance(layer, L.Concatenate):
            return t.cat(x, dim=layer.axis)
        if isinstance(layer, L.Flatten):
            return x.reshape(x.shape[0], -1)
        if isinstance(layer, L.Reshape):
            return x.reshape(x.shape[0], *layer.target_shape)
        if isinstance(layer, L.Conv2D):
            pad = "same" if layer.padding == "same" else 0
            y = F.conv2d(x.permute(0, 3, 1, 2), w["kernel"].permute(3, 2, 0, 1), w.get("bias"),
                         stride=tuple(layer.strides), padding=pad).permute(0, 2, 3, 1)
            return F.relu(y) if layer._relu else y
        if isinstance(layer, L.MaxPooling2D):
            return F.max_pool2d(x.permute(0, 3, 1, 2), layer.pool_size, layer.strides).permute(0, 2, 3, 1)
        if isinstance(layer, L.GlobalAveragePooling2D):
            return x.mean(dim=(1, 2), keepdim=layer.keepdims)
        if isinstance(layer, L.GlobalMaxPooling2D):
            return x.amax(dim=(1, 2), keepdim=layer.keepdims)
        if isinstance(layer, L.BatchNormalization):  # training mode: batch statistics, biased variance
            dims = tuple(range(x.ndim - 1))
            mean = x.mean(dim=dims)
            var = ((x - mean) ** 2).mean(dim=dims)
            return (x - mean) / t.sqrt(var + layer.epsilon) * w["gamma"] + w["beta"]
        raise NotImplementedError(type(layer).__name__)


def torch_loss(torch, model, xs, ys, loss_names, loss_weights):
    """Σ_k w_k L_k computed by torch for host inputs ``xs`` and targets ``ys``; returns (loss, TorchGraph)."""
    g = TorchGraph(torch)
    outs = g.model(model, [torch.tensor(np.asarray(x, dtype=np.float64)) for x in xs])
    total = 0.0
    for out, y, name, w in zip(outs, ys, loss_names, loss_weights):
        if name == "mse":
            loss = ((out - torch.tensor(y)) ** 2).mean()
        elif name == "sparse_categorical_crossentropy":  # out holds probabilities (a softmax output)
            loss = -torch.log(out[torch.arange(len(y)), torch.tensor(y, dtype=torch.long)]).mean()
        else:
            raise NotImplementedError(name)
        total = total + w * loss
    return total, g
