"""OmegaConf-style ``${key.path}`` references between the values of a raw spec."""
import re
from typing import List, Tuple

_INTERPOLATION = re.compile(r'\$\{([^}]*)\}')
# OmegaConf's MISSING value.
MISSING = '???'


def resolve_interpolations(data: dict) -> List[str]:
    """Resolve OmegaConf-style references in place, as TAO's Hydra loader does:
    ``${results_dir}/train`` takes another key's value (a string that is exactly one
    reference keeps that value's type); ``???`` (OmegaConf's MISSING) becomes null, so a task
    that needs the key says so. Resolvers (``${oc.env:HOME}``) are refused: specs are data.

    Args:
        data: The raw spec (YAML data), changed in place.

    Returns:
        One message per reference that cannot be resolved.
    """
    problems: List[str] = []

    def lookup(path: str):
        node = data
        for part in path.split('.'):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(path)
            node = node[part]
        return node

    def resolve(value, where: str, seen: Tuple[str, ...]):
        if isinstance(value, dict):
            return {k: resolve(v, f'{where}.{k}' if where else str(k), seen)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, f'{where}[{i}]', seen) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if value.strip() == MISSING:
            return None
        refs = list(_INTERPOLATION.finditer(value))
        if not refs:
            return value
        parts = {}
        for m in refs:
            ref = m.group(1).strip()
            if ':' in ref:
                problems.append(f'{where}: {value!r} uses a resolver ({ref.split(":")[0]}); '
                                'specs are data, only ${key.path} references are resolved')
                return value
            if ref in seen:
                problems.append(f'{where}: {value!r} refers to itself through '
                                f'{" -> ".join(seen + (ref, ))}')
                return value
            try:
                target = lookup(ref)
            except KeyError:
                problems.append(f'{where}: {value!r} refers to {ref}, which the spec does '
                                'not set')
                return value
            parts[m.group(0)] = resolve(target, ref, seen + (ref, ))
        if len(refs) == 1 and refs[0].group(0) == value.strip():
            return parts[refs[0].group(0)]
        for text, target in parts.items():
            if target is None:
                problems.append(f'{where}: {value!r} refers to {text[2:-1]}, which is not '
                                'set (null or ???)')
                return value
            value = value.replace(text, str(target))
        return value

    data.update(resolve(data, '', ()))
    # A key that several values refer to is resolved (and its problem found) once per
    # reference; report each problem once.
    return list(dict.fromkeys(problems))
