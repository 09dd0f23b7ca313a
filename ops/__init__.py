"""Operations: training, endpoint rendering and the process runner behind `make run`."""
