"""SavedModels of every kind TF Serving serves, built the way their authors build them, for the model server's
fidelity tests. Run as `python -m tests.support.tf_serving_models OUT`: the build needs a fresh TensorFlow (two
logical CPUs for MirroredStrategy must be configured before TF initialises), so tests run it in a subprocess.

- tf1_half_plus_two / tf1_half_plus_three: TF Serving's classic example, y = 0.5x + 2 (or + 3), exported with
  `tf.compat.v1.saved_model.builder`: `x` is the parsed tf.Example feature (declared [-1, 1]), `serving_default`
  predicts from it, `classify_x_to_y` / `regress_x_to_y` run on serialized tf.Examples through ParseExample; more
  signatures over the same graph and variables: `classify_classes` (classes and scores), `lookup` (strings to
  int64 ids through a vocabulary in assets/), `double_int64` ([None] int64) and `matmul` ([None, 2] float).
- tf2_module: a tf.Module with a shared variable and several tf.function signatures (float, int64 + string,
  and Predict-method signatures on serialized tf.Examples named for classify and regress).
- keras: a Keras 3 model exported with `model.export`.
- mirrored: a Keras model built and saved under MirroredStrategy over two logical CPUs.
"""

from __future__ import annotations

import sys
from pathlib import Path

VOCABULARY = ("unknown", "cat", "dog", "bird")  # ids 0..3; a word not in it looks up as -1
KERAS_INPUT = "features"


def _tf1_half_plus(path: Path, offset: float) -> None:
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        a = v1.Variable(0.5, name="a")
        b = v1.Variable(offset, name="b")
        serialized = v1.placeholder(tf.string, name="tf_example")  # unknown shape, as the original
        parsed = v1.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        x = tf.identity(parsed["x"], name="x")  # fed directly by Predict
        x.set_shape([None, 1])  # declared [-1, 1]: static only, the graph does not check it at run time
        y = tf.add(tf.multiply(a, x), b, name="y")
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(y)[0], 1], name="classes")
        scores = tf.concat([-y, y], axis=1, name="scores")

        words = v1.placeholder(tf.string, [None], name="words")
        vocabulary = tf.constant(str(path.parent / "vocabulary.txt"), name="vocabulary_path")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocabulary)
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocabulary, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
            ),
            default_value=-1,
        )
        ids = table.lookup(words, name="ids")
        counts = v1.placeholder(tf.int64, [None], name="n")
        doubled = tf.multiply(counts, tf.constant(2, tf.int64), name="doubled")
        matrix = v1.placeholder(tf.float32, [None, 2], name="m")
        summed = tf.matmul(matrix, tf.ones([2, 1]), name="summed")
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])

        info = v1.saved_model.utils.build_tensor_info
        build = v1.saved_model.signature_def_utils.build_signature_def
        predict, classify, regress = (f"tensorflow/serving/{m}" for m in ("predict", "classify", "regress"))
        signatures = {
            "serving_default": build({"x": info(x)}, {"y": info(y)}, predict),
            "classify_x_to_y": build({"inputs": info(serialized)}, {"scores": info(y)}, classify),
            "regress_x_to_y": build({"inputs": info(serialized)}, {"outputs": info(y)}, regress),
            "classify_classes": build(
                {"inputs": info(serialized)}, {"classes": info(classes), "scores": info(scores)}, classify
            ),
            "lookup": build({"words": info(words)}, {"ids": info(ids)}, predict),
            "double_int64": build({"n": info(counts)}, {"doubled": info(doubled)}, predict),
            "matmul": build({"m": info(matrix)}, {"summed": info(summed)}, predict),
        }
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map=signatures,
            assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
            main_op=v1.tables_initializer(),
            strip_default_attrs=True,
        )
        builder.save()


def _tf2_module(path: Path) -> None:
    import tensorflow as tf

    class Multi(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(3.0)

        def _x(self, inputs: tf.Tensor) -> tf.Tensor:
            return tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def times(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x * self.scale}

        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.int64, name="n"), tf.TensorSpec([None], tf.string, name="s")]
        )
        def mixed(self, n: tf.Tensor, s: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"n_times_2": n * 2, "s_upper": tf.strings.upper(s)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": self._x(inputs) * self.scale}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            y = self._x(inputs) * self.scale
            return {"scores": tf.concat([y, -y], axis=1), "classes": tf.tile([["pos", "neg"]], [tf.shape(y)[0], 1])}

    module = Multi()
    signatures = {
        "serving_default": module.times,
        "mixed": module.mixed,
        "regress": module.regress,
        "classify": module.classify,
    }
    tf.saved_model.save(module, str(path), signatures=signatures)


def _keras(path: Path) -> None:
    import keras

    model = keras.Sequential(
        [
            keras.Input((2,), name=KERAS_INPUT),
            keras.layers.Dense(1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(1.0)),
        ]
    )
    model.export(str(path), format="tf_saved_model", verbose=False)


def _mirrored(path: Path) -> None:
    import keras
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((2,), name=KERAS_INPUT),
                keras.layers.Dense(1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(2.0)),
            ]
        )
        model.compile(optimizer="sgd", loss="mse")
        model.export(str(path), format="tf_saved_model", verbose=False)


def build_all(out: Path) -> None:
    """OUT/<kind>/1 for every kind above."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    for name, offset in (("tf1_half_plus_two", 2.0), ("tf1_half_plus_three", 3.0)):
        (out / name).mkdir(parents=True)
        vocabulary = out / name / "vocabulary.txt"  # the builder copies it into assets/
        vocabulary.write_text("\n".join(VOCABULARY) + "\n")
        _tf1_half_plus(out / name / "1", offset)
        vocabulary.unlink()  # only the copy in assets/ may be read by the server
    _tf2_module(out / "tf2_module" / "1")
    _keras(out / "keras" / "1")
    _mirrored(out / "mirrored" / "1")


if __name__ == "__main__":
    build_all(Path(sys.argv[1]))
