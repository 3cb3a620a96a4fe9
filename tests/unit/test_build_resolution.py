"""Task and pooling resolution: explicit flag > sentence-transformers config > architecture default."""

from __future__ import annotations

import json

import pytest

from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve
from triton_pooling_contract.tasks import PoolingTask, PoolingType

from unit.build_helpers import fake_checkpoint


def build(tmp_path, archs=("BertModel",), ckpt_kw=None, **request):
    path = fake_checkpoint(tmp_path / "ckpt", archs, **(ckpt_kw or {}))
    return resolve(BuildRequest(checkpoint=path, **request), inspect_checkpoint(path))


@pytest.mark.parametrize("archs, task, pooling", [
    (("BertForTokenClassification",), PoolingTask.TOKEN_CLASSIFY, PoolingType.ALL),
    (("BertForSequenceClassification",), PoolingTask.SEQ_CLASSIFY, PoolingType.NATIVE),
    (("Qwen2ForSequenceClassification",), PoolingTask.SEQ_CLASSIFY, PoolingType.LAST),
    (("Qwen2ForTokenClassification",), PoolingTask.TOKEN_CLASSIFY, PoolingType.ALL),
    (("BertModel",), PoolingTask.EMBED, PoolingType.MEAN),
    (("Qwen3Model",), PoolingTask.EMBED, PoolingType.LAST),
    ((), PoolingTask.EMBED, PoolingType.MEAN),
])
def test_default_task_and_pooling_follow_the_architecture(tmp_path, archs, task, pooling):
    model = build(tmp_path, archs)
    assert (model.spec.task, model.pooling, model.spec.name) == (task, pooling, task.value)
    assert model.definition.to_parameters()["pooling_type"] == pooling.value


def test_task_the_checkpoint_cannot_serve_is_refused_with_the_tasks_it_can(tmp_path):
    with pytest.raises(BuildError, match=r"--task is 'embed'.*supported tasks: 'token_classify'"):
        build(tmp_path, ("BertForTokenClassification",), task="embed")
    with pytest.raises(BuildError, match=r"supported tasks: 'embed', 'token_embed'"):
        build(tmp_path, ("BertModel",), task="seq_classify")


def test_vllm_classify_alias_and_explicit_token_embed(tmp_path):
    assert build(tmp_path, ("RobertaForSequenceClassification",), task="classify").spec.task is PoolingTask.SEQ_CLASSIFY
    model = build(tmp_path, ("BertModel",), task="token_embed")
    assert (model.spec.task, model.pooling) == (PoolingTask.TOKEN_EMBED, PoolingType.ALL)


def test_unknown_task_lists_valid_names(tmp_path):
    with pytest.raises(BuildError, match=r"Unknown pooling task 'reward'.*'classify'"):
        build(tmp_path, task="reward")


def test_sentence_transformers_pooling_and_normalize_beat_the_architecture_default(tmp_path):
    model = build(tmp_path, ckpt_kw=dict(st_pooling={"pooling_mode_cls_token": True}, max_seq_length=77))
    assert model.pooling is PoolingType.CLS
    assert model.definition.to_parameters()["use_activation"] == "false"  # no Normalize module: vLLM leaves it raw
    assert model.definition.to_parameters()["max_tokens"] == "77"


def test_new_style_pooling_mode_and_normalize_module(tmp_path):
    model = build(tmp_path, ckpt_kw=dict(st_pooling={"pooling_mode": "lasttoken"}, normalize=True))
    assert (model.pooling, model.definition.use_activation) == (PoolingType.LAST, True)


def test_explicit_flags_beat_sentence_transformers(tmp_path):
    model = build(tmp_path, ckpt_kw=dict(st_pooling={"pooling_mode_cls_token": True}, max_seq_length=77),
                  pooling_type="mean", use_activation=True, max_tokens=12)
    d = model.definition
    assert (model.pooling, d.pooling_type, d.use_activation, d.max_tokens) == (PoolingType.MEAN, PoolingType.MEAN, True, 12)


@pytest.mark.parametrize("flags, pooling", [
    ({"pooling_mode_max_tokens": True}, PoolingType.MAX), ({"pooling_mode": "weightedmean"}, PoolingType.WEIGHTED_MEAN),
    ({"pooling_mode_mean_sqrt_len_tokens": True}, PoolingType.MEAN_SQRT_LEN), ({"pooling_mode": "lasttoken"}, PoolingType.LAST),
])
def test_every_sentence_transformers_pooling_mode_is_served(tmp_path, flags, pooling):
    assert build(tmp_path, ckpt_kw=dict(st_pooling=flags)).pooling is pooling


def test_combined_pooling_modes_are_refused_naming_them(tmp_path):
    with pytest.raises(BuildError, match=r"combines the modes 'cls, mean'.*not served; one mode is.*--pooling-type"):
        build(tmp_path, ckpt_kw=dict(st_pooling={"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}))


def _add_module(path, kind, type_, config=None):
    modules = json.loads((path / "modules.json").read_text())
    folder = f"{len(modules)}_{kind}"
    modules.insert(-1 if modules[-1]["type"].endswith("Normalize") else len(modules),
                   {"idx": len(modules), "name": str(len(modules)), "path": folder, "type": type_})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / folder).mkdir()
    (path / folder / "config.json").write_text(json.dumps(config or {}))


@pytest.mark.parametrize("kind, type_, config, needle", [
    ("WeightedLayerPooling", "sentence_transformers.models.WeightedLayerPooling", {},
     r"module 3_WeightedLayerPooling \(sentence_transformers.models.WeightedLayerPooling\), which is not served; "
     r"served modules: 'Transformer', 'Pooling', 'Dense', 'LayerNorm', 'Normalize'"),
    ("Custom", "my_package.modules.Custom", {}, r"module 3_Custom \(my_package.modules.Custom\), which is not served"),
    ("Dense", "sentence_transformers.models.Dense", {"activation_function": "torch.nn.modules.activation.Softsign"},
     r"uses activation 'torch.nn.modules.activation.Softsign', which is not served; served: 'Identity', 'Tanh'"),
])
def test_unserved_pipeline_modules_are_refused_naming_them(tmp_path, kind, type_, config, needle):
    path = fake_checkpoint(tmp_path / "ckpt", ("BertModel",), st_pooling={"pooling_mode": "mean"}, normalize=True)
    _add_module(path, kind, type_, config)
    with pytest.raises(BuildError, match=needle):
        resolve(BuildRequest(checkpoint=path), inspect_checkpoint(path))


def test_a_dense_pipeline_is_embed_only(tmp_path):
    path = fake_checkpoint(tmp_path / "ckpt", ("BertModel",), st_pooling={"pooling_mode": "cls"})
    _add_module(path, "Dense", "sentence_transformers.models.Dense", {"activation_function": "torch.nn.modules.activation.Tanh"})
    assert resolve(BuildRequest(checkpoint=path), inspect_checkpoint(path)).pooling is PoolingType.CLS
    with pytest.raises(BuildError, match=r"task 'token_embed' does not pool: build it as 'embed'"):
        resolve(BuildRequest(checkpoint=path, task="token_embed"), inspect_checkpoint(path))


def test_pooling_not_valid_for_task_is_refused(tmp_path):
    with pytest.raises(BuildError, match=r"--pooling-type is 'ALL'; task 'embed' allows 'MEAN', 'CLS', 'LAST'"):
        build(tmp_path, pooling_type="ALL")


def test_step_options_make_a_prm(tmp_path):
    model = build(tmp_path, ("Qwen2ForTokenClassification",), ckpt_kw=dict(num_labels=2),
                  step_tag_id=151651, returned_token_ids=(1,))
    params = model.definition.to_parameters()
    assert (model.pooling, params["step_tag_id"], params["returned_token_ids"]) == (PoolingType.STEP, "151651", "1")


def test_step_option_errors_name_the_flag(tmp_path):
    prm = ("Qwen2ForTokenClassification",)
    with pytest.raises(BuildError, match=r"STEP needs --step-tag-id"):
        build(tmp_path, prm, pooling_type="STEP")
    with pytest.raises(BuildError, match=r"--returned-token-ids is \[2\]; this checkpoint has labels 0..1"):
        build(tmp_path, prm, ckpt_kw=dict(num_labels=2), step_tag_id=5, returned_token_ids=(2,))
    with pytest.raises(BuildError, match=r"--step-tag-id applies to token_classify"):
        build(tmp_path, ("BertModel",), step_tag_id=5)


def test_runtime_is_decided_with_the_serving_plan(tmp_path):
    from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME
    from triton_pooling_server.builder.resolution import apply_plan
    from triton_pooling_server.builder.tuning import Host, Profile, TuningFlags, plan_model

    cpu, gpu = plan_model(Host(2)), plan_model(Host(8, (0,)))
    classifier = build(tmp_path, ("BertForSequenceClassification",))
    assert apply_plan(classifier, cpu).definition.to_parameters()["runtime"] == DEFAULT_CPU_RUNTIME.value  # every task is lean
    assert apply_plan(build(tmp_path, runtime="openvino"), cpu).definition.to_parameters()["runtime"] == "openvino"
    assert apply_plan(build(tmp_path), gpu).definition.to_parameters()["runtime"] == "torch"
    assert apply_plan(build(tmp_path, dtype="bfloat16"), cpu).definition.to_parameters()["runtime"] == "torch"
    with pytest.raises(BuildError, match=r"--runtime onnx runs on the CPU, but this build is for GPUs \[0\]"):
        apply_plan(build(tmp_path, runtime="onnx"), gpu)
    with pytest.raises(BuildError, match=r"--runtime openvino serves float32 only; --dtype float16 runs with --runtime torch"):
        apply_plan(build(tmp_path, runtime="openvino", dtype="float16"), cpu)
    assert plan_model(Host(8, (0,)), TuningFlags(Profile.CPU)).kind == "KIND_CPU"


def test_pickled_weights_need_an_explicit_flag(tmp_path):
    with pytest.raises(BuildError, match=r"no \*.safetensors.*--allow-unsafe-weights"):
        build(tmp_path, ckpt_kw=dict(weights="pytorch_model.bin"))


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(BuildError, match=r"not a Hugging Face checkpoint.*config.json"):
        inspect_checkpoint(tmp_path)


@pytest.mark.parametrize("where, value, activation", [
    ("st_config", "torch.nn.modules.linear.Identity", "none"),
    ("config", "torch.nn.modules.activation.Sigmoid", "sigmoid"),
    ("legacy", "torch.nn.modules.linear.Identity", "none"),
])
def test_a_cross_encoders_own_activation_is_recorded(tmp_path, where, value, activation):
    path = fake_checkpoint(tmp_path / "ckpt", ("BertForSequenceClassification",), num_labels=1)
    config = json.loads((path / "config.json").read_text())
    if where == "st_config":
        (path / "config_sentence_transformers.json").write_text(json.dumps({"model_type": "CrossEncoder",
                                                                           "activation_fn": value}))
    elif where == "config":
        config["sentence_transformers"] = {"activation_fn": value}
    else:
        config["sbert_ce_default_activation_function"] = value
    (path / "config.json").write_text(json.dumps(config))
    model = resolve(BuildRequest(checkpoint=path), inspect_checkpoint(path))
    assert model.definition.to_parameters()["activation"] == activation
    assert any(f"activation {activation}: the cross-encoder's activation_fn {value}" in d for d in model.decisions)


def test_a_classifiers_activation_follows_vllms_rule_without_one(tmp_path):
    one = build(tmp_path / "a", ("BertForSequenceClassification",), ckpt_kw=dict(num_labels=1))
    three = build(tmp_path / "b", ("BertForSequenceClassification",), ckpt_kw=dict(num_labels=3))
    assert (one.definition.activation.value, three.definition.activation.value) == ("sigmoid", "softmax")


def test_an_unknown_cross_encoder_activation_is_refused_naming_it(tmp_path):
    path = fake_checkpoint(tmp_path / "ckpt", ("BertForSequenceClassification",), num_labels=1)
    config = json.loads((path / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "my_pkg.Scaled"}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BuildError, match=r"cross-encoder activation 'my_pkg.Scaled' is not served; served: "
                                         r"'torch.nn.modules.linear.Identity'"):
        resolve(BuildRequest(checkpoint=path), inspect_checkpoint(path))


@pytest.mark.parametrize("config, flag, expected", [
    ({}, None, None), ({"is_matryoshka": True}, None, ()), ({"matryoshka_dimensions": [256, 64, 128]}, None, (64, 128, 256)),
    ({}, "all", ()), ({"is_matryoshka": True}, "32,16", (16, 32)),
])
def test_matryoshka_is_declared_by_config_json_or_the_flag(tmp_path, config, flag, expected):
    path = fake_checkpoint(tmp_path / "ckpt", ("BertModel",))
    (path / "config.json").write_text(json.dumps({**json.loads((path / "config.json").read_text()), **config}))
    model = resolve(BuildRequest(checkpoint=path, matryoshka_dimensions=flag), inspect_checkpoint(path))
    assert model.definition.matryoshka_dimensions == expected


def test_matryoshka_flag_is_refused_for_classifiers_and_bad_sizes(tmp_path):
    with pytest.raises(BuildError, match=r"--matryoshka-dimensions applies to embed and token_embed"):
        build(tmp_path / "a", ("BertForSequenceClassification",), matryoshka_dimensions="all")
    with pytest.raises(BuildError, match=r"--matryoshka-dimensions is '0,8'; expected 'all' or comma-separated sizes"):
        build(tmp_path / "b", matryoshka_dimensions="0,8")


def test_roberta_positions_start_after_the_padding_index(tmp_path):
    """130 positions with pad_token_id 0 leave 129 usable tokens (RoBERTa numbers positions from padding_idx + 1)."""
    path = fake_checkpoint(tmp_path / "ckpt", ("RobertaForSequenceClassification",), num_labels=2)
    config = {**json.loads((path / "config.json").read_text()), "model_type": "roberta", "max_position_embeddings": 130,
              "pad_token_id": 0}
    (path / "config.json").write_text(json.dumps(config))
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    info = inspect_checkpoint(path)
    assert (info.positions, info.token_limit) == (129, 129)
    assert resolve(BuildRequest(checkpoint=path, max_tokens=129), info).definition.max_tokens == 129
    with pytest.raises(BuildError, match=r"--max-tokens is 130, but checkpoint .* addresses at most 129 tokens "
                                         r"\(its position embeddings, less the padding offset\): use at most 129"):
        resolve(BuildRequest(checkpoint=path, max_tokens=130), info)
