# A Keras 2 era tutorial: seeded, function-form loss, Adadelta, activations as functions, the best
# weights kept in an .hdf5 checkpoint and reloaded, then the model saved as .keras and .h5 and reopened.
import json
import os

import numpy as np

keras.utils.set_random_seed(7)
rng = np.random.default_rng(3)
centers = rng.normal(size=(6, 6)) * 2
labels = rng.integers(0, 6, 300)
x = (centers[labels] + rng.normal(size=(300, 6))).astype("float32")
y = keras.utils.to_categorical(labels, 6)

model = keras.Sequential([keras.layers.Dense(16, activation=keras.activations.relu, input_shape=(6,)),
                          keras.layers.Dense(6, activation=keras.activations.softmax)])
model.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0), loss=keras.losses.categorical_crossentropy,
              metrics=["categorical_accuracy", "top_k_categorical_accuracy"])
best = CHECKPOINT_NAME
checkpoint = keras.callbacks.ModelCheckpoint(filepath=best, monitor="val_loss", save_best_only=True,
                                             save_weights_only=True)
history = model.fit(x, y, epochs=4, batch_size=30, validation_split=0.2, callbacks=[checkpoint], verbose=2)
model.load_weights(best)
val_loss = model.evaluate(x[240:], y[240:], verbose=0)[0]
model.save("model.keras")
model.save("model.h5")
reopened = [keras.models.load_model(name) for name in ("model.keras", "model.h5")]
probs = model.predict(x[:20], verbose=0)
per_sample = np.asarray(keras.losses.categorical_crossentropy(y[:20], probs))
print("RESULT", json.dumps({
    "keys": sorted(history.history),
    "best_reloaded": bool(abs(val_loss - min(history.history["val_loss"])) < 1e-4),
    "reopened_same": [bool(np.allclose(m.predict(x[:20], verbose=0), probs, atol=1e-6)) for m in reopened],
    "reopened_optimizer": [type(m.optimizer).__name__ for m in reopened],
    "per_sample_shape": list(per_sample.shape),
    "softmax_rows_sum_to_1": bool(np.allclose(np.asarray(keras.activations.softmax(x[:4])).sum(axis=1), 1,
                                              atol=1e-6)),
    "files": sorted(f for f in os.listdir(".") if not f.endswith(".py")),
}))
