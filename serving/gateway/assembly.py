"""Build the gateway's parts from a GatewayConfig, without Flask: the HTTP app and `textclf predict`
(which classifies straight through TF Serving) assemble the same upstream client and preprocessing."""

from __future__ import annotations

from pathlib import Path

from data_prep.json_file import read_json
from data_prep.preprocess import Preprocessor
from data_prep.segment import Segmenter
from serving.gateway.cache import ResponseCache
from serving.gateway.classifier import Classifier
from serving.gateway.coalescing import CoalescingUpstream
from serving.gateway.config import GatewayConfig
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.resilience import CircuitBreaker, GuardedUpstream
from serving.gateway.signatures import SignatureCache
from serving.gateway.upstream import Upstream


def build_upstream(config: GatewayConfig) -> Upstream:
    """The REST or gRPC client the config names (imported here so each pulls in only its own deps)."""
    if config.tfserving_rest:
        from serving.gateway.rest_client import RestUpstream

        return RestUpstream(config.tfserving_rest, timeout_s=config.upstream_timeout_s, pool_size=config.pool_size)
    from serving.gateway.grpc_client import GrpcUpstream

    return GrpcUpstream(config.tfserving_grpc, timeout_s=config.upstream_timeout_s)


def build_preprocessor(config: GatewayConfig) -> Preprocessor:
    """The recorded preprocessing (checked against this install), or the default one; jieba loads now."""
    user_dict = Path(config.user_dict) if config.user_dict else None
    stopwords = Path(config.stopwords) if config.stopwords else None
    if config.preprocessing:
        recorded = read_json(Path(config.preprocessing))
        cfg = recorded.get("preprocessing", recorded) if isinstance(recorded, dict) else recorded
        preprocessor = Preprocessor.from_config(cfg, user_dict=user_dict, stopwords=stopwords)
    else:
        preprocessor = Preprocessor(Segmenter(user_dict=user_dict, stopwords=stopwords))
    preprocessor.tokens("预热：加载结巴词典")  # warm every lazy table now, not on the first request
    return preprocessor


def build_classifier(upstream: Upstream, config: GatewayConfig, cache: ResponseCache | None = None) -> Classifier:
    """A Classifier predicting through `upstream`, whose metadata also resolves the signatures."""
    signatures = SignatureCache(upstream.metadata, config.metadata_ttl_s)
    return Classifier(upstream, build_preprocessor(config), signatures, cache=cache)


def build_cache(config: GatewayConfig, metrics: GatewayMetrics) -> ResponseCache | None:
    """The response cache the config asks for, reporting to `metrics`; None when off (either bound 0)."""
    max_bytes = int(config.cache_mb * 1024 * 1024)
    if config.cache_entries == 0 or max_bytes == 0:
        return None
    return ResponseCache(
        config.cache_entries, max_bytes, on_lookup=metrics.cache_looked_up, on_size=metrics.cache_resized
    )


def guard(raw: Upstream, config: GatewayConfig, metrics: GatewayMetrics) -> GuardedUpstream:
    """`raw` behind retries and a circuit breaker that reports its state to `metrics`."""
    breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s, on_change=metrics.breaker_changed)
    return GuardedUpstream(
        raw,
        breaker,
        retries=config.retries,
        backoff_s=config.retry_backoff_s,
        observe=lambda op, seconds: metrics.upstream_latency.labels(op).observe(seconds),
    )


def coalesce(guarded: GuardedUpstream, config: GatewayConfig, metrics: GatewayMetrics) -> Upstream:
    """Predict calls pass the coalescer first, so the breaker and retries act once per merged call."""
    if not config.coalesce_max_texts:
        return guarded
    # a queued call may wait for the call ahead and then its own, each with every retry
    wait_s = 2 * (config.retries + 1) * config.upstream_timeout_s
    return CoalescingUpstream(
        guarded,
        max_texts=config.coalesce_max_texts,
        max_in_flight=config.coalesce_in_flight,
        wait_s=wait_s,
        observe=metrics.coalesced,
    )
