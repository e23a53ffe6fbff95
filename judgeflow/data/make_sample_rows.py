"""Build ``sample_rows.jsonl`` deterministically from the hand-written pieces below.

Why generated and not hand-typed: 240+ rows is too many to keep consistent by hand, but the demo
needs realistic variety (topics, instruction lengths, 2-4 candidates of uneven quality, model
names, some reference answers, some metadata) and must be byte-identical on every machine.
Each base item carries a strong answer, a weaker one and a wrong one; framings vary the ask and
the audience; ``random.Random(SEED)`` picks candidate counts, order and models. A handful of
deliberately bad rows is appended so ``judgeflow validate`` and the demo show quarantine.

    python -m judgeflow.data.make_sample_rows            # rewrites judgeflow/data/sample_rows.jsonl
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

SEED = 20261123
MODELS = ("gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b", "mistral-7b")
OUT = Path(__file__).with_name("sample_rows.jsonl")

# (topic, question, strong answer, weaker answer, wrong answer, reference or None)
ITEMS: list[tuple[str, str, str, str, str, str | None]] = [
    ("geography", "What is the capital of Australia?",
     "The capital of Australia is Canberra, a planned city chosen as a compromise between Sydney and Melbourne.",
     "Australia's capital is Canberra.",
     "The capital of Australia is Sydney, its largest city.",
     "Canberra"),
    ("geography", "Which river flows through Cairo?",
     "The Nile flows through Cairo before fanning out into its delta on the Mediterranean.",
     "The Nile river.",
     "The Euphrates flows through Cairo.",
     "The Nile"),
    ("math", "What is 17 multiplied by 23?",
     "17 x 23 = 391 (17 x 20 = 340, plus 17 x 3 = 51).",
     "It is 391.",
     "17 x 23 = 381.",
     "391"),
    ("math", "Is 221 a prime number?",
     "No. 221 = 13 x 17, so it is composite.",
     "No, it has divisors other than 1 and itself.",
     "Yes, 221 is prime because it is odd and not divisible by 3 or 5.",
     "No, 221 = 13 x 17"),
    ("math", "What is the derivative of x^3 + 2x?",
     "d/dx (x^3 + 2x) = 3x^2 + 2, using the power rule on each term.",
     "3x^2 + 2.",
     "The derivative is x^2 + 2.",
     "3x^2 + 2"),
    ("math", "Solve for x: 2x + 6 = 14.",
     "Subtract 6 from both sides to get 2x = 8, then divide by 2: x = 4.",
     "x = 4.",
     "x = 10, because 14 - 6 + 2 = 10.",
     "x = 4"),
    ("science", "Why is the sky blue?",
     "Sunlight scatters off air molecules, and shorter (blue) wavelengths scatter far more than red ones (Rayleigh scattering), so blue light reaches our eyes from every direction of the sky.",
     "Because blue light gets scattered more by the air.",
     "The sky is blue because it reflects the colour of the oceans.",
     None),
    ("science", "What gas do plants absorb during photosynthesis?",
     "Plants absorb carbon dioxide (CO2) and, using light energy, turn it and water into glucose, releasing oxygen.",
     "Carbon dioxide.",
     "Plants absorb oxygen and release carbon dioxide during photosynthesis.",
     "Carbon dioxide"),
    ("science", "What is the boiling point of water at sea level in Celsius?",
     "Water boils at 100 degrees Celsius at standard sea-level pressure (1 atm).",
     "About 100 C.",
     "Water boils at 90 degrees Celsius at sea level.",
     "100 degrees Celsius"),
    ("science", "How many chromosomes do human body cells usually have?",
     "Most human somatic cells have 46 chromosomes, arranged in 23 pairs.",
     "46.",
     "Humans have 48 chromosomes, like other great apes.",
     "46 (23 pairs)"),
    ("coding", "In Python, how do you reverse a list called items in place?",
     "Call items.reverse(); it reverses the list in place and returns None. Use items[::-1] if you need a reversed copy instead.",
     "Use items.reverse().",
     "Use reversed(items), which modifies the list in place.",
     "items.reverse()"),
    ("coding", "What does the SQL keyword DISTINCT do?",
     "DISTINCT removes duplicate rows from a query's result, so SELECT DISTINCT city FROM users returns each city once.",
     "It removes duplicates from the results.",
     "DISTINCT sorts the result set in ascending order.",
     None),
    ("coding", "What is the time complexity of binary search on a sorted array?",
     "O(log n): each comparison halves the remaining search interval.",
     "Logarithmic.",
     "O(n), because it may have to look at every element.",
     "O(log n)"),
    ("coding", "What does git rebase do, in one or two sentences?",
     "git rebase replays your branch's commits on top of another base commit, producing a linear history; it rewrites those commits, so avoid rebasing branches others already use.",
     "It moves your commits onto another branch's tip.",
     "git rebase deletes the remote branch and recreates it from scratch.",
     None),
    ("coding", "Write a Python expression that counts the vowels in a string s.",
     "sum(1 for ch in s.lower() if ch in 'aeiou')",
     "len([c for c in s if c in 'aeiou'])  # misses uppercase vowels",
     "s.count('aeiou')",
     None),
    ("history", "In what year did the Berlin Wall fall?",
     "The Berlin Wall fell on 9 November 1989, when East German authorities opened the border crossings.",
     "1989.",
     "The Berlin Wall fell in 1991, together with the Soviet Union.",
     "1989"),
    ("history", "Who was the first person to walk on the Moon?",
     "Neil Armstrong, on 20 July 1969, during the Apollo 11 mission; Buzz Aldrin followed him shortly after.",
     "Neil Armstrong.",
     "Yuri Gagarin was the first person to walk on the Moon.",
     "Neil Armstrong"),
    ("history", "What was the main purpose of the Magna Carta?",
     "Sealed in 1215, the Magna Carta limited the English king's power, establishing that the monarch was subject to law and protecting certain rights of barons and free men.",
     "It limited the power of the king.",
     "It declared England's independence from France.",
     None),
    ("language", "Translate 'Where is the train station?' into French.",
     "Où est la gare ?",
     "Où est la station de train ?",
     "Dónde está la estación de tren?",
     "Où est la gare ?"),
    ("language", "What is the plural of 'criterion'?",
     "The plural is 'criteria'; 'criterion' is the singular.",
     "Criteria.",
     "Criterions.",
     "criteria"),
    ("language", "Give a synonym for 'ephemeral'.",
     "'Fleeting' is a close synonym: both describe something that lasts a very short time.",
     "Short-lived.",
     "Eternal.",
     None),
    ("language", "Correct the grammar: 'Me and him goes to the store every day.'",
     "He and I go to the store every day.",
     "Him and me go to the store every day.",
     "Me and him go to the stores every days.",
     "He and I go to the store every day."),
    ("health", "How many hours of sleep do adults generally need?",
     "Most adults need 7 to 9 hours of sleep per night, according to sleep medicine guidelines; needs vary a little between people.",
     "Around 8 hours.",
     "Adults only need about 4 hours if they sleep deeply.",
     "7-9 hours"),
    ("health", "What is a normal resting heart rate for adults?",
     "A normal resting heart rate for adults is roughly 60 to 100 beats per minute; trained athletes can be lower.",
     "About 60-100 bpm.",
     "A normal resting heart rate is 120-150 beats per minute.",
     "60-100 beats per minute"),
    ("finance", "What is compound interest?",
     "Compound interest is interest calculated on the initial principal plus the interest already earned, so the balance grows faster over time than with simple interest.",
     "Interest on interest.",
     "Compound interest is a fixed fee charged once when a loan is opened.",
     None),
    ("finance", "If you invest $1,000 at 5% simple interest for 3 years, how much interest do you earn?",
     "Simple interest = 1,000 x 0.05 x 3 = $150.",
     "$150.",
     "$157.63.",
     "$150"),
    ("finance", "What does diversification mean in investing?",
     "Spreading money across different assets (stocks, bonds, sectors, regions) so that a loss in one holding has a smaller effect on the whole portfolio.",
     "Not putting all your eggs in one basket.",
     "Diversification means putting all your money in the single best-performing stock.",
     None),
    ("cooking", "How long should you boil a large egg for a hard-boiled yolk?",
     "About 10 to 12 minutes after the water returns to a boil, then cool it in cold water to stop the cooking.",
     "Roughly 10 minutes.",
     "Two minutes is enough for a fully hard yolk.",
     "10-12 minutes"),
    ("cooking", "What can I substitute for buttermilk in a recipe?",
     "Stir 1 tablespoon of lemon juice or white vinegar into 1 cup of milk and let it stand for 5 to 10 minutes; plain yogurt thinned with milk also works.",
     "Milk with some lemon juice.",
     "Use the same amount of water with a pinch of sugar.",
     None),
    ("writing", "Write a one-sentence summary of the story of Cinderella.",
     "A kind young woman mistreated by her stepfamily attends a royal ball with help from her fairy godmother, loses a glass slipper, and is found and married by the prince.",
     "A girl goes to a ball and marries a prince.",
     "A girl falls asleep for a hundred years until a prince wakes her.",
     None),
    ("writing", "Suggest a concise subject line for an email asking to reschedule a meeting to Friday.",
     "Request to reschedule our meeting to Friday",
     "Meeting change",
     "URGENT!!! READ NOW",
     None),
    ("writing", "Write a haiku about autumn.",
     "Crimson leaves let go / the wind carries their last words / to the waiting ground",
     "Leaves fall in autumn / it is getting cold outside / I like the season",
     "Autumn is a season that comes after summer and before winter every year.",
     None),
    ("reasoning", "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
     "Yes. Every bloop is a razzie and every razzie is a lazzie, so by transitivity every bloop is a lazzie.",
     "Yes.",
     "Not necessarily; we don't know enough about lazzies.",
     "Yes"),
    ("reasoning", "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. How much does the ball cost?",
     "The ball costs $0.05: if the ball is x, the bat is x + 1.00, and 2x + 1.00 = 1.10 gives x = 0.05.",
     "5 cents.",
     "The ball costs $0.10.",
     "$0.05"),
    ("reasoning", "What comes next in the sequence 2, 6, 12, 20, 30, ...?",
     "42: the differences are 4, 6, 8, 10, so the next difference is 12 (the terms are n(n+1)).",
     "42.",
     "40.",
     "42"),
    ("technology", "What is the difference between RAM and storage?",
     "RAM is fast, volatile working memory that holds data in use and is cleared on power-off; storage (SSD/HDD) is slower but keeps data permanently.",
     "RAM is temporary memory, storage is permanent.",
     "RAM and storage are the same thing; RAM is just the older name.",
     None),
    ("technology", "What does HTTPS add compared with HTTP?",
     "HTTPS wraps HTTP in TLS, which encrypts the traffic, protects it from tampering and lets the browser verify the server's identity with a certificate.",
     "Encryption.",
     "HTTPS makes websites load faster by compressing images.",
     None),
    ("technology", "What is a DNS server for?",
     "A DNS server translates human-readable domain names such as example.com into the IP addresses computers use to connect.",
     "It turns domain names into IP addresses.",
     "A DNS server stores the HTML files of websites.",
     None),
    ("advice", "How can I stay focused while working from home?",
     "Keep a dedicated workspace, set fixed hours, plan the day's top three tasks, silence notifications during focus blocks (for example 50 minutes on, 10 off), and take real breaks away from the screen.",
     "Have a routine and avoid distractions.",
     "Work from bed with the TV on so you stay relaxed.",
     None),
    ("advice", "What should I do first if I think my email account was hacked?",
     "Change the password from a trusted device immediately, turn on two-factor authentication, sign out other sessions, check forwarding rules and recovery details, and warn contacts about suspicious messages.",
     "Change your password.",
     "Ignore it; hackers usually lose interest after a day.",
     None),
]

# Framings: how the question is asked (instruction length and audience vary).
FRAMINGS: list[str] = [
    "{q}",
    "{q} Answer briefly.",
    "Please answer the following question accurately. {q}",
    "I'm preparing for an exam and keep getting this wrong. {q} Explain your reasoning so I can learn it.",
    "Question from a curious 12-year-old: {q} Keep the explanation simple and friendly.",
    "You are a careful expert reviewer. Read the question below and give the most correct and "
    "complete answer you can, noting any common misconception that people have about it.\n\n"
    "Question: {q}",
]


def _verbose(text: str, rng: random.Random) -> str:
    tails = (
        " I hope this helps!",
        " Let me know if you would like more detail.",
        " This is a common question, and the short answer above is the accepted one.",
    )
    return text + rng.choice(tails)


def build_rows() -> list[dict]:
    """All rows, good first, then the deliberately bad ones."""
    rng = random.Random(SEED)
    rows: list[dict] = []
    n = 0
    for framing_index, framing in enumerate(FRAMINGS):
        for item_index, (topic, question, strong, weak, wrong, reference) in enumerate(ITEMS):
            pool = [strong, weak, wrong, _verbose(strong, rng)]
            k = rng.choice((2, 2, 3, 3, 4))
            chosen = rng.sample(pool, k)
            models = rng.sample(MODELS, k)
            row: dict = {"id": f"sample-{n:04d}", "instruction": framing.format(q=question)}
            if n % 5 == 0:  # some rows use the {text, model} candidate style
                row["responses"] = [{"text": t, "model": m} for t, m in zip(chosen, models)]
            else:
                row["responses"] = chosen
                row["models"] = models
            if reference is not None and framing_index % 2 == 0:
                row["reference"] = reference
            if n % 7 == 0:
                row["metadata"] = {"topic": topic, "framing": framing_index, "item": item_index}
            rows.append(row)
            n += 1
    return rows


BAD_LINES: list[bytes] = [
    orjson.dumps({"id": "bad-empty-instruction", "instruction": "", "responses": ["a", "b"]}),
    orjson.dumps({"id": "bad-no-responses", "instruction": "What is 2 + 2?", "responses": []}),
    orjson.dumps({"id": "bad-wrong-type", "instruction": 42, "responses": ["4", "5"]}),
    orjson.dumps({"id": "sample-0003", "instruction": "A duplicate id.", "responses": ["x", "y"]}),
    orjson.dumps({"id": "bad-empty-response", "instruction": "Name a colour.", "responses": ["Blue", " "]}),
    b'{"id": "bad-json", "instruction": "Unterminated line", "responses": ["a", "b"]',
]


def render() -> bytes:
    """The file's bytes: one JSON object per line, bad rows spread through the file."""
    lines = [orjson.dumps(r) for r in build_rows()]
    for offset, bad in enumerate(BAD_LINES):
        lines.insert(37 * (offset + 1) + offset, bad)
    return b"\n".join(lines) + b"\n"


def main() -> None:
    """Rewrite ``sample_rows.jsonl`` next to this file."""
    OUT.write_bytes(render())
    print(f"wrote {OUT} ({len(build_rows())} rows + {len(BAD_LINES)} bad)")


if __name__ == "__main__":
    main()
