"""Spellings of TAO's documentation that its code does not read, accepted for its keys."""
from typing import List

# (section path, documented key, key in TAO's code and specs).
DOC_ALIASES = [('model.decode_head.decoder_params', 'embed_dims', 'embed_dim')]


def resolve_aliases(data: dict, notes: List[str], problems: List[str]) -> None:
    """Rename each documented spelling of :data:`DOC_ALIASES` in the raw spec to the key
    TAO's code reads.

    Args:
        data: The raw TAO 5 spec, changed in place.
        notes: Receives one line per renamed key.
        problems: Receives a problem where both spellings are set and disagree.
    """
    for section, alias, key in DOC_ALIASES:
        node = data
        for part in section.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or alias not in node:
            continue
        if key in node and node[key] != node[alias]:
            problems.append(f'{section}.{alias}: {node[alias]!r} disagrees with '
                            f'{section}.{key}: {node[key]!r}; they are one setting '
                            f'(TAO reads {key})')
            continue
        node[key] = node.pop(alias)
        notes.append(f'{section}.{alias} read as {section}.{key} (the spelling of TAO\'s '
                     'documentation; TAO\'s code reads the latter)')
