# A Sequential MLP with Dropout and RMSprop (after Keras' "mnist_mlp" example), on generated clusters.
import json

import numpy as np

rng = np.random.default_rng(0)
centers = rng.normal(size=(3, 20)) * 3
y_train, y_test = rng.integers(0, 3, 600), rng.integers(0, 3, 150)
x_train = (centers[y_train] + rng.normal(size=(600, 20))).astype("float32")
x_test = (centers[y_test] + rng.normal(size=(150, 20))).astype("float32")

model = keras.Sequential([
    keras.layers.Dense(64, activation="relu", input_shape=(20,)),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(3, activation="softmax"),
])
model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=2, validation_data=(x_test, y_test))
score = model.evaluate(x_test, y_test, verbose=2)
print("RESULT", json.dumps({"epochs": len(history.epoch), "keys": sorted(history.history),
                            "score_len": len(score), "good": score[1] > 0.8}))
