"""MNIST handwritten digits, loaded like ``keras.datasets.mnist.load_data()``.

Checksums are the published SHA-256 of the original gzipped files, as pinned
by tensorflow-datasets (``url_checksums/mnist.txt``) and torchvision.
"""

from . import sources
from .idx import read_pair

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

SPEC = sources.DatasetSpec(
    name="mnist",
    title="MNIST",
    files={
        TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    mirror_env="GPUPROP_MNIST_MIRROR",
    class_names=tuple(str(d) for d in range(10)),
)
CLASS_NAMES = SPEC.class_names


def load_spec(spec, data_dir=None, download=True, progress=None):
    """Load any MNIST-layout dataset described by ``spec`` (the four standard files)."""
    paths = sources.locate(spec, data_dir=data_dir, download=download, progress=progress)
    kw = dict(shape=spec.image_shape, num_classes=spec.num_classes)
    train = read_pair(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], **kw)
    test = read_pair(paths[TEST_IMAGES], paths[TEST_LABELS], **kw)
    return train, test


def load_data(data_dir=None, download=True, progress=None):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays.

    Shapes are (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).
    ``data_dir``: a folder holding the four IDX files (``.gz`` or raw); see
    :mod:`gpuprop.datasets.sources` for where else files are looked for.
    ``progress``: ``None`` (a bar when stderr is a terminal), ``True``,
    ``False`` or a callable ``(file_name, bytes_done, bytes_total_or_None)``.
    """
    return load_spec(SPEC, data_dir=data_dir, download=download, progress=progress)
