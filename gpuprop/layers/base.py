"""The layer contract: build once, then ``forward`` and ``backward`` by hand.

A layer keeps what its backward needs from its forward (and nothing more),
fills ``self.grads`` during ``backward`` and returns the gradient with respect
to its input. Trainable arrays live in ``self.params`` and non-trainable state
(BatchNorm's moving averages) in ``self.state``, both in Keras' weight order.
"""

from .. import config, initializers

# Bumped whenever any layer's ``trainable`` changes, or a model packs layers' weights into its flat arrays: a model
# compares one integer per step to know whether the weights its optimizer updates are still the ones it chose.
TRAINABLE_CHANGES = 0


class Layer:
    """Base class. Subclasses implement ``build_params``, ``forward`` and ``backward``.

    ``need_input_grad`` is switched off by the model for the first layer, whose
    input gradient nobody reads, so its backward can skip that work.
    ``output_is_private``: forward returns a fresh array it does not keep, so
    an attached activation may overwrite it.
    """

    output_is_private = False

    def __init__(self, input_shape=None, name=None, activation=None, dtype=None, **kwargs):
        if kwargs.get("batch_input_shape") is not None:
            input_shape = tuple(kwargs.pop("batch_input_shape"))[1:]
        kwargs.pop("batch_input_shape", None)
        trainable = kwargs.pop("trainable", True)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected argument(s): {', '.join(kwargs)}")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.name = name
        self.dtype = dtype
        self.trainable = bool(trainable)  # False: no optimizer touches the weights (from the next step on)
        self.params = {}
        self.grads = {}
        self.state = {}
        self.built = False
        self.backend = None
        self.xp = None
        self.need_input_grad = True
        self.output_shape = None
        self.activation = None
        if activation is not None:
            from .activation import Activation

            act = Activation(activation)
            act.inplace = self.output_is_private
            self.activation = None if act.identity else act

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freeze (False) or unfreeze the layer's weights; models notice at their next step, as Keras 3 does."""
        global TRAINABLE_CHANGES
        self._trainable = bool(value)
        TRAINABLE_CHANGES += 1

    # --- building -------------------------------------------------------------
    def build(self, input_shape, backend, rng):
        """Create parameters for per-sample ``input_shape`` on ``backend``, drawing from host ``rng``."""
        self.backend = backend
        self.xp = backend.xp
        self.dtype = self.dtype or config.floatx()
        config.refuse_half(self.dtype, f"{type(self).__name__} dtype")
        self.input_shape = tuple(input_shape)
        self.build_params(self.input_shape, rng)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        if self.activation is not None:
            self.activation.build(self.output_shape, backend, rng)
        self.built = True
        return self.output_shape

    def build_params(self, input_shape, rng):
        """Create ``self.params`` / ``self.state``; layers without weights need not override."""

    def add_weight(self, name, shape, initializer, rng, trainable=True):
        host = initializers.get(initializer)(tuple(shape), rng)
        arr = self.backend.asarray(host, dtype=self.dtype)
        (self.params if trainable else self.state)[name] = arr
        if trainable:
            self.grads[name] = self.xp.zeros_like(arr)
        return arr

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def symbolic_output_shapes(self, input_shape):
        """Per-sample shapes of every output for this input (a list: models may have several)."""
        return [tuple(self.compute_output_shape(tuple(input_shape)))]

    # --- the math -----------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        """Forward with the layer's activation applied, as a Keras layer call does.

        Called on symbolic tensors (``Input`` or another layer's symbolic output) it
        computes nothing and records the call for ``Model(inputs, outputs)``.
        """
        from .input import is_symbolic, symbolic_call

        if is_symbolic(x):
            return symbolic_call(self, x)
        y = self.forward(x, training=training)
        return self.activation.forward(y, training) if self.activation is not None else y

    # --- weights and config ---------------------------------------------------------
    def weight_names(self):
        return list(self.params) + list(self.state)

    def get_weights(self):
        """Host NumPy copies in Keras order: trainable first, then non-trainable."""
        return [self.backend.to_host(a).copy() for a in (*self.params.values(), *self.state.values())]

    def set_weights(self, weights):
        names = self.weight_names()
        if len(weights) != len(names):
            raise ValueError(f"{self.name}: expected {len(names)} arrays ({', '.join(names)}), got {len(weights)}")
        for name, w in zip(names, weights):
            store = self.params if name in self.params else self.state
            if tuple(w.shape) != tuple(store[name].shape):
                raise ValueError(f"{self.name}.{name}: expected shape {tuple(store[name].shape)}, got {tuple(w.shape)}")
            store[name][...] = self.backend.asarray(w, dtype=store[name].dtype)

    def count_params(self):
        return sum(int(a.size) for a in (*self.params.values(), *self.state.values()))

    def get_config(self):
        """Constructor arguments as plain JSON values; ``from_config`` inverts it."""
        cfg = {"name": self.name}
        if not self.trainable:
            cfg["trainable"] = False
        if self.input_shape is not None:
            cfg["input_shape"] = list(self.input_shape)
        if self.activation is not None:
            cfg["activation"] = self.activation.get_config()["activation"]
        return cfg

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)
