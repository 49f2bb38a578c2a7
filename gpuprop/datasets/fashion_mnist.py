"""Fashion-MNIST (Zalando), loaded like ``keras.datasets.fashion_mnist.load_data()``.

Same layout and file names as MNIST. Checksums are the published SHA-256 of
the original gzipped files, as pinned by tensorflow-datasets
(``url_checksums/fashion_mnist.txt``) and torchvision. Debian's
``dataset-fashion-mnist`` package recompresses the files, so its copies in
``/usr/share/datasets/fashion-mnist`` are checked by IDX structure only.
"""

from . import sources
from .mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, load_spec

SPEC = sources.DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files={
        TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    mirror_env="GPUPROP_FASHION_MNIST_MIRROR",
    install_hint="run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
CLASS_NAMES = SPEC.class_names


def load_data(data_dir=None, download=True, progress=None):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays.

    Shapes are (60000, 28, 28), (60000,), (10000, 28, 28), (10000,); labels
    index :data:`CLASS_NAMES`. Arguments as in :func:`gpuprop.datasets.mnist.load_data`.
    """
    return load_spec(SPEC, data_dir=data_dir, download=download, progress=progress)
