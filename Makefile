# newsclf: `make run` sets up and runs the main job on the bundled corpus; `make test` tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run dataset train predict test lint bench bench-predict bench-build bench-labels bench-real clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install  ## build both datasets, train + register both models, predict the seed articles, score on real sets
	$(BIN)/newsclf-dataset
	$(BIN)/newsclf-train task=topic
	$(BIN)/newsclf-train task=stance model=tfidf_cues_logreg
	$(BIN)/newsclf-predict output.path=predictions/seeds.parquet output.overwrite=true  # this target's own file, with the new champions
	@if [ -d "$${NEWSCLF_SHARED_DATA:-../shared/data}/nyt-russia-ukraine" ]; then \
	  $(BIN)/newsclf-evaluate evaluation=real_dev; \
	else echo "newsclf-evaluate: no real labelled sets at $${NEWSCLF_SHARED_DATA:-../shared/data}, skipped"; fi
	@echo
	@echo "Datasets:    data/datasets/{topic,stance} (dataset card: README.md in each)"
	@echo "Predictions: predictions/seeds.parquet (rejects beside it)"
	@echo "MLflow:      $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db  (then open http://127.0.0.1:5000)"

test: install  ## lint, then the whole test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

$(BIN)/.bench-installed: pyproject.toml $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(BIN)/.bench-installed  ## BBC News: newsclf vs plain scikit-learn vs fastText; out-of-core on 1M articles
	$(BIN)/python benchmarks/bbc.py
	$(BIN)/python benchmarks/predict_profile.py > benchmarks/results/predict_profile.md
	$(BIN)/python benchmarks/out_of_core.py
	$(BIN)/python benchmarks/dataset_build.py
	cat benchmarks/results/bbc.md benchmarks/results/predict_profile.md benchmarks/results/out_of_core.md benchmarks/results/dataset_build.md > benchmarks/results/RESULTS.md
	@echo "Tables: benchmarks/results/RESULTS.md"

bench-predict: $(BIN)/.bench-installed  ## newsclf-predict's throughput and peak memory, 10k and 1M articles, vs plain and fastText
	$(BIN)/python benchmarks/predict_scale.py --sizes 10000 1000000 --engines local spark plain fasttext

bench-build: install  ## newsclf-dataset on 10k, 100k and 1M generated articles with weak labels: wall, articles/s, peak RSS
	$(BIN)/python benchmarks/dataset_build.py --sizes 10000 100000 1000000

bench-labels: install  ## weak labels vs gold on the bundled corpus, and what annotations add
	$(BIN)/python benchmarks/weak_labels.py

bench-real: install  ## the default models trained on the bundled corpus, scored on the real labelled sets
	$(BIN)/python benchmarks/real.py $(BENCH_REAL_ARGS)

clean:
	rm -rf data predictions evaluations outputs multirun mlruns mlflow.db .mlflow.db*.lock mlflow.db.*lock
