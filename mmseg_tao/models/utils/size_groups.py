"""Test-time batches of images of different sizes, predicted in groups of equal size."""
from collections import defaultdict
from typing import Callable, List, Union

Data = Union[dict, tuple, list]


def test_step_in_size_groups(data: Data, test_step: Callable[[Data], List]) -> List:
    """``test_step(data)``, or, when ``data['inputs']`` holds images of several sizes (mmseg's
    data preprocessor stacks only equal sizes at test time), ``test_step`` of each group of
    equal size, the results put back in the batch's order.

    Args:
        data: A batch from the dataloader (``inputs``: a list of ``[C, H, W]`` tensors).
        test_step: The segmentor's own ``test_step`` (e.g. ``super().test_step``).
    """
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if not isinstance(inputs, list) or len({tuple(x.shape) for x in inputs}) < 2:
        return test_step(data)
    groups = defaultdict(list)
    for i, x in enumerate(inputs):
        groups[tuple(x.shape)].append(i)
    results: list = [None] * len(inputs)
    for index in groups.values():
        part = {k: [v[i] for i in index] if isinstance(v, list) else v
                for k, v in data.items()}
        for i, sample in zip(index, test_step(part)):
            results[i] = sample
    return results
