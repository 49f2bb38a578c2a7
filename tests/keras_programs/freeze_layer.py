# Transfer-learning habit: train, freeze the first layer, recompile, train again; the frozen weights stay put.
import json

import numpy as np

rng = np.random.default_rng(5)
x = rng.normal(size=(160, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")

model = keras.Sequential([keras.layers.Dense(12, activation="relu", input_shape=(8,)),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=1, batch_size=16, verbose=2)
model.layers[0].trainable = False
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
frozen = model.layers[0].get_weights()
head = model.layers[1].get_weights()
model.fit(x, y, epochs=2, batch_size=16, verbose=2)
moved = [float(np.abs(a - b).max()) for a, b in zip(frozen, model.layers[0].get_weights())]
head_moved = max(float(np.abs(a - b).max()) for a, b in zip(head, model.layers[1].get_weights()))
print("RESULT", json.dumps({"frozen_moved": max(moved), "head_moved": head_moved > 0,
                            "trainable": len(model.trainable_weights), "non_trainable": len(model.non_trainable_weights)}))
