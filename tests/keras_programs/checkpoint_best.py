# ModelCheckpoint keeps the best model by validation accuracy; the program reloads it and checks it.
import json
import os

import numpy as np

rng = np.random.default_rng(3)
centers = rng.normal(size=(2, 6))
y = rng.integers(0, 2, 300)
x = (centers[y] + 1.5 * rng.normal(size=(300, 6))).astype("float32")

model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(6,)),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
checkpoint = keras.callbacks.ModelCheckpoint("best.keras", monitor="val_loss", mode="min", save_best_only=True,
                                             verbose=1)
every = keras.callbacks.ModelCheckpoint("ck-{epoch:02d}-{val_loss:.2f}.keras")
history = model.fit(x, y, epochs=4, batch_size=30, validation_split=0.2, callbacks=[checkpoint, every], verbose=2)
best = keras.models.load_model("best.keras")
loss = best.evaluate(x[240:], y[240:], verbose=0)[0]
files = sorted(f for f in os.listdir(".") if f.startswith("ck-"))
print("RESULT", json.dumps({"best_matches": bool(abs(loss - min(history.history["val_loss"])) < 1e-4),
                            "files": files == [f"ck-{e + 1:02d}-{v:.2f}.keras"
                                               for e, v in enumerate(history.history["val_loss"])]}))
