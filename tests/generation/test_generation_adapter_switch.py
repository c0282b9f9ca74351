"""A loaded transformers generator switches its LoRA adapter in place (no second load of the base), and a GPU
worker picks up a newly registered ``latest`` adapter at the next task, in eager mode and in a real worker."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from sqlalchemy import select

from tests.generation.lessons import TFIM_CONTEXT
from training.checkpoints import register, today, write_config
from workers.evaluation.goals import get_goal
from workers.generation import build_generator
from workers.generation.base import PromptRequest
from workers.generation.config import GeneratorConfig
from workers.model_version import adapter_sha256

TFIM = PromptRequest(get_goal("tfim-4"), TFIM_CONTEXT, seed=1)


def settings(ckpt, adapter, **overrides) -> dict:
    return {"generator": "transformers", "model": str(ckpt.base_dir), "adapter": adapter, "max_new_tokens": 120,
            "device": "cpu", "do_sample": False, "temperatures": [0.7], **overrides}


def completion(gen) -> str:
    return gen.generate([TFIM])[0].candidates[0].raw


def scaled_adapter(source: pathlib.Path, out: pathlib.Path, factor: float) -> pathlib.Path:
    """A copy of ``source`` whose lora_B matrices are multiplied by ``factor`` (other weights, same shapes)."""
    shutil.copytree(source, out)
    weights = out / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v * factor if "lora_B" in k else v for k, v in tensors.items()}, weights)
    return out


def versions(ckpt, root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """quantum-mind-v1 (the taught adapter) and quantum-mind-v2 (its lora_B halved), with their config.yaml."""
    v1 = root / "quantum-mind-v1"
    shutil.copytree(ckpt.adapter_dir, v1)
    v2 = scaled_adapter(ckpt.adapter_dir, root / "quantum-mind-v2", 0.5)
    for folder, version in ((v1, "v1"), (v2, "v2")):
        write_config(folder, {"version": version, "base_model": str(ckpt.base_dir.resolve()), "training_data": {},
                              "num_examples": 1, "epochs": 1, "final_loss": 0.0, "eval_accuracy": None,
                              "date": today(), "method": "test"})
    return v1, v2


def test_a_loaded_generator_switches_adapters_in_place_and_answers_like_a_cold_load(tiny_checkpoint, tmp_path):
    v1, v2 = versions(tiny_checkpoint, tmp_path)
    gen = build_generator(GeneratorConfig(**settings(tiny_checkpoint, str(v1))))
    first = completion(gen)
    model = gen.model
    cold_v2 = build_generator(GeneratorConfig(**settings(tiny_checkpoint, str(v2))))
    expected_v2 = completion(cold_v2)
    assert expected_v2 != first  # the two versions answer differently

    assert gen.use_adapter(str(v2)) and gen.model is model and gen.switches == 1 and gen.switch_seconds > 0
    batch = gen.generate([TFIM])[0]
    assert batch.candidates[0].raw == expected_v2 and batch.adapter == str(v2)
    assert batch.settings["adapter_switches"] == 1
    assert not gen.use_adapter(str(v2))  # the same folder again: nothing to do

    gen.use_adapter(str(v1))  # back: the merged weights are v1's again, within float32 rounding
    assert completion(gen) == first
    for switched, cold in zip(gen.model.state_dict().values(), build_cold(tiny_checkpoint, v1).state_dict().values()):
        torch.testing.assert_close(switched, cold, rtol=0, atol=1e-6)

    gen.use_adapter(None)  # the base alone, as a cold load without adapter answers
    assert completion(gen) == completion(build_generator(GeneratorConfig(**settings(tiny_checkpoint, None))))


def build_cold(ckpt, adapter):
    gen = build_generator(GeneratorConfig(**settings(ckpt, str(adapter))))
    gen.load()
    return gen.model


def test_a_separate_adapter_is_swapped_by_peft_and_answers_like_a_cold_load(tiny_checkpoint, tmp_path):
    v1, v2 = versions(tiny_checkpoint, tmp_path)
    gen = build_generator(GeneratorConfig(**settings(tiny_checkpoint, str(v1), merge_lora=False)))
    first = completion(gen)
    gen.use_adapter(str(v2))
    assert completion(gen) == completion(build_generator(GeneratorConfig(**settings(tiny_checkpoint, str(v2)))))
    assert list(gen.model.peft_config) == ["v1"]  # the old adapter was dropped, one adapter in memory
    gen.use_adapter(str(v1))
    assert completion(gen) == first


@pytest.fixture
def eager_store(tmp_path, monkeypatch):
    from storehelpers import eager_sqlite_store

    with eager_sqlite_store(tmp_path / "eager.db", monkeypatch, fast_scoring=False) as engine:
        yield engine


def generate_once(engine, iteration: int, generator: dict, *, timeout_s: float = 60):
    """One generation task for tfim-4 (submitted through the queue); returns (completion, model-version row)."""
    from storehelpers import add_goal, new_run

    from db.models import Candidate, GenerationBatch, ModelVersion
    from db.session import session_scope
    from workers.submit import submit_generation, wait_for_batches

    with session_scope(engine) as s:
        goal_id, run_id = add_goal(s, "tfim-4"), new_run(s)
    prompt = {"prompt_index": 0, "memory_context": TFIM_CONTEXT, "seed": 1}
    submit_generation(run_id=run_id, goal_id=goal_id, iteration=iteration, prompts=[prompt], generator=generator)
    (rec,) = wait_for_batches(run_id=run_id, goal_id=goal_id, iteration=iteration, prompt_indices=[0],
                              timeout_s=timeout_s)
    with session_scope(engine) as s:
        batch = s.get(GenerationBatch, rec.batch_id)
        assert batch.status == "done", batch.error
        version = s.execute(select(ModelVersion).where(ModelVersion.id == batch.model_version_id)).scalar_one()
        raw = s.get(Candidate, rec.candidate_ids[0]).raw
        return raw, (version.adapter_sha256, version.adapter_path)


def test_an_eager_worker_follows_latest_to_a_newly_registered_version_without_a_restart(
        tiny_checkpoint, tmp_path, eager_store):
    from workers import tasks

    v1, v2 = versions(tiny_checkpoint, tmp_path)
    gen_settings = settings(tiny_checkpoint, "latest")
    register(eager_store, v1)
    earlier = set(tasks._generators)  # other tests of the same process may have cached generators of their own
    first, version = generate_once(eager_store, 0, gen_settings)
    assert version == (adapter_sha256(str(v1.resolve())), str(v1.resolve()))
    (key,) = set(tasks._generators) - earlier
    gen = tasks._generators[key]
    register(eager_store, v2)  # a new version while the worker runs
    second, version = generate_once(eager_store, 1, gen_settings)
    assert version == (adapter_sha256(str(v2.resolve())), str(v2.resolve())) and second != first
    assert set(tasks._generators) - earlier == {key} and tasks._generators[key] is gen  # the same object, switched
    assert gen.switches == 1 and gen.adapter_path == str(v2.resolve())


@pytest.mark.integration
def test_a_real_gpu_worker_follows_latest_to_a_newly_registered_version_without_a_restart(tiny_checkpoint, tmp_path):
    from queuehelpers import Worker, configured_app, delete_prefix, new_prefix, queue_env

    from db.migrate import upgrade_database
    from db.session import make_engine

    url = f"sqlite:///{tmp_path / 'worker.db'}"
    engine = make_engine(url)
    upgrade_database(engine)
    prefix = new_prefix()
    env = queue_env(url, prefix)
    v1, v2 = versions(tiny_checkpoint, tmp_path)
    gen_settings = settings(tiny_checkpoint, "latest")
    try:
        with configured_app(env), Worker(env, tmp_path, queues="gpu") as worker:
            worker.wait_ready()
            register(engine, v1)
            first, version1 = generate_once(engine, 0, gen_settings, timeout_s=120)
            register(engine, v2)  # a new version while the worker runs
            second, version2 = generate_once(engine, 1, gen_settings, timeout_s=120)
            assert worker.proc.poll() is None  # a gpu worker is one process (solo pool): it served both tasks
            assert f"switched adapter {v1.resolve()} -> {v2.resolve()}" in worker.output(), worker.output()
        assert version1 == (adapter_sha256(str(v1.resolve())), str(v1.resolve()))
        assert version2 == (adapter_sha256(str(v2.resolve())), str(v2.resolve())) and second != first
    finally:
        engine.dispose()
        delete_prefix(prefix)
