# Calling fit twice continues training; each call trains the epochs it asks for.
import json

import numpy as np

rng = np.random.default_rng(4)
x = rng.normal(size=(128, 5)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")

model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(5,)),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
weights = model.get_weights()  # built at construction: weights exist before training
first = model.fit(x, y, epochs=2, batch_size=32, verbose=2)
second = model.fit(x, y, epochs=2, batch_size=32, verbose=2)
third = model.fit(x, y, epochs=3, initial_epoch=1, batch_size=32, verbose=2)
print("RESULT", json.dumps({"n_weights": len(weights), "params": model.count_params(), "first": first.epoch,
                            "second": second.epoch, "third": third.epoch}))
