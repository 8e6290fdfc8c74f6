# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   build a demo dump from scikit-image's bundled photos, acquire its bundle from a
#               loopback link, and scan both
#   make test   run the test suite (the same command CI runs)
PYTHON ?= python3
UV := $(PYTHON) -m uv
DEMO := demo-data

.PHONY: setup test-packages apt-install demo lint test test-fast bench clean-demo

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.5" \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages "uv>=0.5"
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen --no-sync python -c "from scanner.fingerprints import hog; hog.warm()"

demo: setup
	rm -rf $(DEMO)/workspace
	$(UV) run --frozen --no-sync python demo/build_demo.py $(DEMO)
	$(UV) run --frozen --no-sync facetrace enroll $(DEMO)/enroll/*.jpg --consent default --workspace $(DEMO)/workspace
	$(UV) run --frozen --no-sync python demo/serve.py $(DEMO) -- \
		facetrace scan --workspace $(DEMO)/workspace --lab-network 127.0.0.1/32 $(DEMO)/dump '{url}/share/bundle.zip'
	$(UV) run --frozen --no-sync facetrace acquire verify --workspace $(DEMO)/workspace
	$(UV) run --frozen --no-sync facetrace profile --workspace $(DEMO)/workspace
	sid=$$($(UV) run --frozen --no-sync facetrace registry list --json --workspace $(DEMO)/workspace | \
		$(UV) run --frozen --no-sync python -c "import json, sys; print(json.load(sys.stdin)[0]['id'])"); \
	$(UV) run --frozen --no-sync facetrace registry verify $$sid $(DEMO)/dump/person_0001/astronaut_selfie.jpg \
		--method in_person --workspace $(DEMO)/workspace; test $$? -eq 2  # refused: an edit of an enrolled photo
	$(UV) run --frozen --no-sync facetrace registry audit --verify --workspace $(DEMO)/workspace
	$(UV) run --frozen --no-sync facetrace report --workspace $(DEMO)/workspace --out $(DEMO)/report --case-uco
	$(UV) run --frozen --no-sync facetrace report verify $(DEMO)/report/report.json --dump $(DEMO)/dump --dump $(DEMO)/bundle.zip
	rm -rf $(DEMO)/workspace-model
	$(UV) run --frozen --no-sync facetrace engine export-dlib $(DEMO)/dlib_resnet.onnx
	$(UV) run --frozen --no-sync facetrace engine set $(DEMO)/dlib_resnet.onnx --alignment dlib-150 --mean 0 --std 1 --no-l2 --workspace $(DEMO)/workspace-model
	$(UV) run --frozen --no-sync facetrace enroll $(DEMO)/enroll/*.jpg --consent default --workspace $(DEMO)/workspace-model
	$(UV) run --frozen --no-sync facetrace scan --workspace $(DEMO)/workspace-model --workers 1 $(DEMO)/dump

# The report and enrollment-page tests render HTML in Debian's headless Chromium, and the storage
# tests run on PostgreSQL too (a throwaway server the tests start on loopback). Install Debian's
# packages when we can (root with apt-get); otherwise those tests are skipped with the reason.
test-packages:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } \
		|| $(MAKE) --no-print-directory apt-install PACKAGES="chromium chromium-driver" \
		|| echo "chromium or chromium-driver could not be installed: the browser tests will be skipped"
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| $(MAKE) --no-print-directory apt-install PACKAGES="postgresql" \
		|| echo "postgresql could not be installed: the PostgreSQL variants of the storage tests will be skipped"

apt-install:
	@[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PACKAGES) >/dev/null 2>&1

# Lint, format, types, layering and dependencies (docs/development.md). Not yet a step of
# `make test`: it joins once the refactor of issue 20 leaves it clean.
lint: setup
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .
	$(UV) run --frozen --no-sync mypy
	$(UV) run --frozen --no-sync lint-imports
	$(UV) run --frozen --no-sync deptry .

test: setup test-packages
	$(UV) run --frozen --no-sync pytest

# The inner-loop subset: leaves out the slow, PostgreSQL and browser tests (markers in pyproject.toml).
test-fast: setup test-packages
	$(UV) run --frozen --no-sync pytest -m "not slow and not postgres and not browser"

bench: setup
	$(UV) run --frozen --no-sync python benchmarks/bench_scan.py

clean-demo:
	rm -rf $(DEMO)
