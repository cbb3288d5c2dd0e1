# Two commands on a fresh machine: `make demo` runs the whole sim loop, `make test` runs the tests.
# Both create .venv and install everything it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A unique DDS domain per test run, and discovery kept on this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: setup demo test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate setup.py ros2_ws/src/metarl_ros/setup.py
	# torch 2.13.0 first: on this machine it is a local CPU wheel; a range would pull CUDA builds.
	$(BIN)/pip install --quiet torch==2.13.0
	# The ray extra too: the Ray collection backend's test runs in CI (wheel ~80 MB, ~6 s to install).
	$(BIN)/pip install --quiet -e ".[train,ros,dev,logs,ray]"
	$(BIN)/pip install --quiet -e ros2_ws/src/metarl_ros
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/metarl demo --out demo_output

test: setup
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( ($$$$ % 80) + 20 ))} $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo_output runs bundles
