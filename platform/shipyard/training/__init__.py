"""Training the fraud model: split, train, evaluate, gate, export, register."""
