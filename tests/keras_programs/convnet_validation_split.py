# A small convnet with validation_split (after Keras' "mnist_convnet" example), on generated images.
import json

import numpy as np

rng = np.random.default_rng(1)
n, num_classes = 400, 3
y = rng.integers(0, num_classes, n)
x = rng.normal(size=(n, 12, 12, 1)).astype("float32") * 0.3
for i, label in enumerate(y):  # each class lights up its own band of rows
    x[i, 4 * label:4 * label + 4, :, 0] += 1.0
y_cat = keras.utils.to_categorical(y, num_classes)

model = keras.Sequential([
    keras.layers.Conv2D(8, kernel_size=(3, 3), activation="relu", input_shape=(12, 12, 1)),
    keras.layers.MaxPooling2D(pool_size=(2, 2)),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(num_classes, activation="softmax"),
])
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(x, y_cat, batch_size=32, epochs=3, validation_split=0.1, verbose=2)
score = model.evaluate(x, y_cat, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
print("RESULT", json.dumps({"epochs": len(history.epoch), "keys": sorted(history.history),
                            "steps": history.params["steps"]}))
