"""Keras' ``Sequential``: a stack of layers, each feeding the next."""

from .network import Network


class Sequential(Network):
    """A stack of layers trained with ``compile`` / ``fit``, as in Keras.

    >>> model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'),
    ...                     Dense(10, activation='softmax')], device='auto', seed=0)
    >>> model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
    >>> history = model.fit(x_train, y_train, batch_size=128, epochs=5)

    ``device`` (gpuprop's addition) is chosen once and kept; ``seed`` fixes
    the initial weights (identical on every device), shuffling and dropout.
    The Keras API itself (compile, fit, evaluate, predict, save...) lives in
    the base class ``Network``, shared by every model kind.
    """

    def __init__(self, layers=None, name=None, device="auto", seed=None, trainable=True):
        super().__init__(layers, device=device, seed=seed, name=name, trainable=trainable)

    def _link(self):
        super()._link()
        self._symbolic_chain()

    def _symbolic_chain(self):
        """Keras' Sequential is also a graph: an ``Input`` and each layer called on the previous output, so
        ``Model(model.inputs, model.get_layer(name).output)`` extracts features from it (the layers are shared)."""
        from ..layers.input import Input, symbolic_call

        for layer, node in getattr(self, "_chain", []):  # after add(): the old chain goes, a new one is recorded
            layer._inbound_nodes.remove(node)
        tensor = Input(self.layers[0].input_shape)
        self.inputs, self._chain = [tensor], []
        for layer in self.layers:
            tensor = symbolic_call(layer, tensor)
            self._chain.append((layer, layer._inbound_nodes[-1]))
        self.outputs = [tensor]

    def get_config(self):
        return {"name": self.name, "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                                              for layer in self.layers]}
