"""The format reward (paper section 3, Table 1): a fixed bonus for a response the parser can read.

It is binary on purpose: partial credit for "almost JSON" would pay for output the reward cannot
score. A response that fails the format also gets 0 for every other term (`shop_env.rewards`), so
the format is a gate as well as a bonus; the paper (Appendix A) prefers 0 over a negative penalty.
"""

from __future__ import annotations

from shop_env.response_format import ParsedResponse

def format_reward(parsed: ParsedResponse, weight: float) -> float:
    """`weight` (`RewardConfig.format_weight`, 0.5) when the response parsed into a rationale and a
    known action, else 0.

    >>> from shop_env.response_format import parse_response
    >>> format_reward(parse_response('{"rationale": "Done.", "action": {"type": "terminate"}}'), 0.5)
    0.5
    >>> format_reward(parse_response('{"rationale": "Done.", "action": {}}'), 0.5)
    0.0
    """
    return weight if parsed.ok else 0.0
