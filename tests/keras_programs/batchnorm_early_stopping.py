# BatchNormalization with EarlyStopping: random labels, so validation loss soon stops improving.
import json

import numpy as np

rng = np.random.default_rng(2)
x = rng.normal(size=(200, 10)).astype("float32")
y = rng.integers(0, 2, 200)

model = keras.Sequential([
    keras.layers.Dense(64, input_shape=(10,)),
    keras.layers.BatchNormalization(),
    keras.layers.Activation("relu"),
    keras.layers.Dense(64),
    keras.layers.BatchNormalization(),
    keras.layers.Activation("relu"),
    keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True, verbose=1)
history = model.fit(x, y, batch_size=20, epochs=60, validation_split=0.25, callbacks=[stop], verbose=2)
val = history.history["val_loss"]
best = int(np.argmin(val))
restored = model.evaluate(x[150:], y[150:], verbose=0)[0]
print("RESULT", json.dumps({"stopped": len(history.epoch) < 60, "epochs_after_best": len(val) - 1 - best,
                            "restored_best": bool(abs(restored - val[best]) < 1e-4 * max(1.0, val[best]))}))
