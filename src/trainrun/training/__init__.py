"""The training loop and its callbacks.

After the estimators, which build a network and a head, this is where they are trained:
``loop.train_loop`` is the whole loop; every side effect (progress display, history,
checkpoints, TensorBoard, run recording) is a callback from ``callbacks``.
``run_recorder`` is the one seam to the runs half.
"""
