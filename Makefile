# Thin wrapper over ./dev (which needs no make) for those who type make.
.PHONY: run test lint lock bench bench-quick
run:
	./dev run
test:
	./dev test
lint:
	./dev lint
lock:
	./dev lock
bench:
	./dev bench
bench-quick:
	./dev bench-quick
