"""Word lists the procedural shop is assembled from: departments, product types, brands, reviews.

Features, materials and shopping reasons belong to a product type (a "leak proof air fryer" or a
"hiking trip" that needs loafers would teach a model nonsense); brands, colours, sizes and review
sentences belong to a department.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    """A kind of product, the ways people name it in a search box, and what it can be like."""

    name: str
    """Display name as used in titles and rationales, e.g. "trail running shoes"."""
    synonyms: tuple[str, ...]
    """Other phrases shoppers type for it (indexed too, so they find it)."""
    price_range: tuple[float, float]
    """Typical price range in dollars; prices are drawn log-uniformly inside it."""
    features: tuple[str, ...]
    """Selling points a product of this type may have (shown in titles, wanted by personas)."""
    materials: tuple[str, ...]
    """What it may be made of."""
    reasons: tuple[str, ...]
    """Why a persona needs one ("my old pair finally wore out")."""
    sized: bool = False
    """Whether it comes in the department's sizes."""


@dataclass(frozen=True)
class Category:
    """A department: its product types, brands, colours, sizes and review sentences."""

    slug: str
    title: str
    types: tuple[ProductType, ...]
    brands: tuple[str, ...]
    colors: tuple[str, ...]
    size_options: tuple[str, ...] = ()
    """Values of the size option for sized product types."""
    size_label: str = "size"
    """Name of the size option on the page ("size", "capacity")."""
    gendered: bool = False
    """Whether titles carry "Men's" / "Women's"."""
    praise: tuple[str, ...] = ()
    """Review sentences for a product people liked."""
    complaints: tuple[str, ...] = ()
    """Review sentences for a product people did not like."""


_T = ProductType

CATEGORIES: tuple[Category, ...] = (
    Category(
        slug="shoes",
        title="Shoes",
        types=(
            _T("running shoes", ("running shoes", "runners", "jogging shoes", "running sneakers"), (45, 160),
               ("lightweight", "cushioned", "breathable", "wide fit", "arch support", "reflective"),
               ("mesh", "knit", "synthetic"),
               ("I run three mornings a week", "I'm training for my first half marathon",
                "my old running shoes finally wore out"), sized=True),
            _T("trail running shoes", ("trail shoes", "trail runners", "off road running shoes"), (60, 180),
               ("waterproof", "lightweight", "grippy", "cushioned", "rock plate", "wide fit"),
               ("mesh", "synthetic", "gore-tex"),
               ("I've started running on muddy forest trails", "my road shoes slip on the trails"), sized=True),
            _T("sneakers", ("sneakers", "casual shoes", "tennis shoes", "trainers"), (35, 130),
               ("lightweight", "slip-on", "memory foam", "breathable", "classic"),
               ("canvas", "leather", "knit", "suede"),
               ("I'm on my feet all day at work", "I want something comfortable for everyday wear"), sized=True),
            _T("hiking boots", ("hiking boots", "hikers", "trekking boots", "walking boots"), (60, 220),
               ("waterproof", "ankle support", "insulated", "lightweight", "non-slip"),
               ("leather", "suede", "nubuck", "synthetic"),
               ("I'm planning a hiking trip next month", "my old boots leak in the rain"), sized=True),
            _T("sandals", ("sandals", "slides", "flip flops"), (18, 80),
               ("arch support", "waterproof", "adjustable straps", "cushioned", "quick dry"),
               ("leather", "rubber", "eva foam"),
               ("summer is coming", "I'm going on a beach vacation"), sized=True),
            _T("slippers", ("slippers", "house shoes"), (15, 60),
               ("memory foam", "fleece lined", "non-slip", "washable"),
               ("wool", "faux fur", "suede"),
               ("the floors in my place get cold", "I want something cozy for the house"), sized=True),
            _T("loafers", ("loafers", "slip on shoes", "dress shoes"), (40, 150),
               ("cushioned", "slip-on", "wide fit", "classic"),
               ("leather", "suede", "canvas"),
               ("I started a new office job", "I have a wedding to go to"), sized=True),
        ),
        brands=("Trailpeak", "Strideon", "Nimbus", "Vantor", "Pacewell", "Kestrel", "Solemate"),
        colors=("black", "white", "gray", "navy", "red", "olive", "tan"),
        size_options=("6", "7", "8", "9", "10", "11", "12"),
        gendered=True,
        praise=(
            "Super comfortable right out of the box.",
            "True to size and really light.",
            "Great grip, even on wet ground.",
            "I wear them every day now.",
            "Good support, my knees thank me.",
        ),
        complaints=(
            "Runs about half a size small.",
            "The sole started peeling after two months.",
            "Too narrow for my feet.",
            "The color looks duller than in the photos.",
        ),
    ),
    Category(
        slug="clothing",
        title="Clothing",
        types=(
            _T("t-shirt", ("t shirt", "tee", "tshirt", "graphic tee"), (10, 40),
               ("slim fit", "relaxed fit", "moisture wicking", "crew neck", "v-neck"),
               ("cotton", "organic cotton", "polyester"),
               ("most of my t-shirts are worn out", "I need something for the gym"), sized=True),
            _T("hoodie", ("hoodie", "sweatshirt", "pullover"), (25, 85),
               ("relaxed fit", "zip-up", "fleece lined", "heavyweight"),
               ("cotton", "fleece", "organic cotton"),
               ("evenings are getting chilly", "I want something comfy for weekends"), sized=True),
            _T("rain jacket", ("rain jacket", "raincoat", "waterproof jacket", "shell jacket"), (45, 200),
               ("waterproof", "packable", "hooded", "breathable", "lightweight"),
               ("nylon", "polyester", "gore-tex"),
               ("I'm traveling somewhere rainy soon", "I bike to work in all weather"), sized=True),
            _T("jeans", ("jeans", "denim pants", "denim"), (30, 120),
               ("slim fit", "straight leg", "stretch", "high waisted", "relaxed fit"),
               ("denim", "organic cotton"),
               ("my favorite jeans ripped", "I need a pair for work casual days"), sized=True),
            _T("leggings", ("leggings", "yoga pants", "workout tights"), (18, 75),
               ("high waisted", "squat proof", "moisture wicking", "with pockets", "stretch"),
               ("nylon", "spandex", "cotton"),
               ("I'm doing yoga three times a week", "I need something for the gym"), sized=True),
            _T("sweater", ("sweater", "jumper", "knit sweater", "cardigan"), (30, 140),
               ("crew neck", "oversized", "cable knit", "lightweight"),
               ("merino wool", "cashmere", "cotton"),
               ("winter is coming", "I want something nice for the office"), sized=True),
            _T("socks", ("socks", "ankle socks", "crew socks"), (8, 30),
               ("cushioned", "moisture wicking", "no show", "pack of 6"),
               ("cotton", "merino wool", "bamboo"),
               ("all my socks have holes", "I need socks for hiking"), sized=True),
        ),
        brands=("Northloom", "Fabrica", "Urbane", "Cottonway", "Alder & Co", "Meridian", "Loomly"),
        colors=("black", "white", "heather gray", "navy", "forest green", "burgundy", "beige"),
        size_options=("XS", "S", "M", "L", "XL", "XXL"),
        gendered=True,
        praise=(
            "Soft fabric and it kept its shape after washing.",
            "Fits exactly as the size chart says.",
            "Nice weight, doesn't feel cheap.",
            "I bought a second one in another color.",
        ),
        complaints=(
            "Shrank a little in the dryer.",
            "The sleeves are too long for me.",
            "The fabric pills after a few wears.",
            "Thinner than I expected.",
        ),
    ),
    Category(
        slug="electronics",
        title="Electronics",
        types=(
            _T("wireless earbuds", ("wireless earbuds", "earbuds", "bluetooth earbuds", "earphones"), (20, 250),
               ("noise cancelling", "water resistant", "long battery life", "wireless charging case"),
               ("plastic", "silicone"),
               ("I commute an hour each way", "I want something for workouts")),
            _T("over-ear headphones", ("headphones", "over ear headphones", "noise cancelling headphones"), (35, 350),
               ("noise cancelling", "foldable", "long battery life", "built-in mic"),
               ("plastic", "aluminum", "leather"),
               ("I work from home and take a lot of calls", "my neighbors are loud")),
            _T("bluetooth speaker", ("bluetooth speaker", "portable speaker", "wireless speaker"), (20, 200),
               ("waterproof", "loud", "long battery life", "compact"),
               ("fabric", "rubber", "aluminum"),
               ("we have a lot of backyard parties", "I want music in the shower")),
            _T("smartwatch", ("smartwatch", "smart watch", "fitness tracker", "fitness watch"), (40, 330),
               ("heart rate monitor", "gps", "long battery life", "water resistant", "sleep tracking"),
               ("aluminum", "silicone", "stainless steel"),
               ("I want to track my workouts", "my doctor told me to walk more")),
            _T("power bank", ("power bank", "portable charger", "battery pack"), (15, 80),
               ("fast charging", "compact", "10000mah", "20000mah", "usb-c"),
               ("plastic", "aluminum"),
               ("my phone dies before the end of the day", "I travel a lot for work")),
            _T("usb-c charger", ("usb c charger", "phone charger", "wall charger", "fast charger"), (10, 50),
               ("fast charging", "65w", "2 ports", "foldable plug"),
               ("plastic",),
               ("I lost my charger on a trip", "I need a spare charger for the office")),
            _T("webcam", ("webcam", "web camera", "usb camera"), (25, 150),
               ("1080p", "4k", "built-in mic", "auto focus", "privacy cover"),
               ("plastic", "aluminum"),
               ("I work from home and take a lot of calls", "my laptop camera is blurry")),
        ),
        brands=("Voltra", "Sonique", "Auralis", "Pixelon", "Chargely", "Zentek", "Bravio"),
        colors=("black", "white", "silver", "midnight blue", "rose gold"),
        praise=(
            "Pairing with my phone took seconds.",
            "Works exactly as advertised.",
            "Battery easily lasts all day.",
            "Small enough to carry everywhere.",
        ),
        complaints=(
            "The connection drops now and then.",
            "Feels flimsy for the price.",
            "Stopped working after a few weeks.",
            "The setup instructions were confusing.",
        ),
    ),
    Category(
        slug="kitchen",
        title="Kitchen",
        types=(
            _T("coffee maker", ("coffee maker", "coffee machine", "drip coffee maker", "espresso maker"), (25, 250),
               ("programmable", "12 cup", "single serve", "thermal carafe", "auto shut off"),
               ("stainless steel", "plastic", "glass"),
               ("I make coffee every morning before work", "our old coffee maker broke")),
            _T("chef knife", ("chef knife", "kitchen knife", "cooking knife"), (15, 150),
               ("8 inch", "ergonomic handle", "razor sharp", "full tang"),
               ("stainless steel", "damascus steel", "carbon steel"),
               ("I'm cooking at home more these days", "my knives are all dull")),
            _T("frying pan", ("frying pan", "skillet", "fry pan", "nonstick pan"), (18, 120),
               ("non-stick", "oven safe", "induction compatible", "12 inch", "dishwasher safe"),
               ("cast iron", "stainless steel", "ceramic", "aluminum"),
               ("I just moved into my first apartment", "the coating on my old pan is coming off")),
            _T("blender", ("blender", "smoothie blender", "personal blender"), (25, 200),
               ("high speed", "portable", "dishwasher safe", "ice crushing"),
               ("plastic", "glass", "stainless steel"),
               ("I'm trying to eat healthier", "I want smoothies for breakfast"), sized=True),
            _T("water bottle", ("water bottle", "insulated bottle", "drink bottle"), (10, 45),
               ("insulated", "leak proof", "bpa free", "dishwasher safe", "with straw"),
               ("stainless steel", "plastic", "glass"),
               ("I keep forgetting to drink water at work", "I need a bottle for the gym"), sized=True),
            _T("travel mug", ("travel mug", "coffee tumbler", "tumbler"), (10, 40),
               ("insulated", "leak proof", "dishwasher safe", "with handle"),
               ("stainless steel", "ceramic"),
               ("I drink coffee on my commute", "my coffee is always cold by the time I get to work"), sized=True),
            _T("cutting board", ("cutting board", "chopping board"), (12, 60),
               ("reversible", "juice groove", "non-slip", "dishwasher safe"),
               ("bamboo", "wood", "plastic"),
               ("I just moved into my first apartment", "my old board is cracked")),
            _T("air fryer", ("air fryer", "airfryer"), (45, 220),
               ("digital display", "dishwasher safe basket", "compact", "6 quart", "dual basket"),
               ("stainless steel", "plastic"),
               ("I'm trying to eat healthier", "I want quick weeknight dinners")),
        ),
        brands=("Cookwell", "Hearthly", "Brewster", "Ironleaf", "Kitchara", "Sippa", "Grano"),
        colors=("black", "silver", "white", "sage green", "matte blue", "red"),
        size_options=("12 oz", "20 oz", "32 oz", "40 oz"),
        size_label="capacity",
        praise=(
            "Easy to clean and feels sturdy.",
            "Works exactly as described.",
            "Looks great on the counter.",
            "Great value for the money.",
        ),
        complaints=(
            "Stopped working after a month.",
            "Smaller than I expected.",
            "Hard to clean properly.",
            "Feels cheaply made.",
        ),
    ),
    Category(
        slug="home",
        title="Home",
        types=(
            _T("throw blanket", ("throw blanket", "blanket", "couch throw"), (18, 90),
               ("oversized", "machine washable", "cozy", "lightweight"),
               ("fleece", "cotton", "sherpa", "knit"),
               ("I'm redecorating my living room", "our couch needs a blanket for movie nights")),
            _T("desk lamp", ("desk lamp", "table lamp", "reading lamp", "led lamp"), (18, 110),
               ("dimmable", "usb charging port", "adjustable arm", "touch control", "led"),
               ("metal", "wood", "plastic"),
               ("I work from home and my desk is dark", "I read a lot at night")),
            _T("bath towels", ("bath towels", "towel set", "towels"), (20, 90),
               ("quick dry", "extra absorbent", "oversized", "set of 4"),
               ("cotton", "turkish cotton", "bamboo"),
               ("guests are coming to stay next month", "our towels are getting scratchy")),
            _T("bed sheets", ("bed sheets", "sheet set", "sheets"), (25, 160),
               ("deep pocket", "cooling", "wrinkle resistant", "hypoallergenic"),
               ("cotton", "linen", "bamboo", "microfiber"),
               ("I just bought a new mattress", "I sleep hot at night"), sized=True),
            _T("throw pillow", ("throw pillow", "pillow cover", "cushion"), (12, 60),
               ("set of 2", "removable cover", "decorative", "18x18"),
               ("velvet", "linen", "cotton"),
               ("I'm redecorating my living room", "my couch looks a bit plain")),
            _T("storage bins", ("storage bins", "storage baskets", "organizer bins"), (15, 70),
               ("stackable", "foldable", "with lids", "set of 3"),
               ("fabric", "plastic", "wicker"),
               ("my closet is a mess", "I'm organizing the garage")),
            _T("scented candle", ("candle", "scented candle", "soy candle"), (10, 45),
               ("long burning", "lavender", "vanilla", "3 wick"),
               ("soy wax", "beeswax"),
               ("I want my place to smell nice", "I'm looking for a small gift")),
        ),
        brands=("Nestwell", "Casabella", "Lumen & Oak", "Softhaus", "Dwellry", "Maple Row", "Havenly"),
        colors=("cream", "charcoal", "sage", "dusty pink", "navy", "white", "terracotta"),
        size_options=("twin", "full", "queen", "king"),
        praise=(
            "Looks even better in person.",
            "Good quality for the price.",
            "Exactly the color I was hoping for.",
            "Held up well after several washes.",
        ),
        complaints=(
            "Arrived with a strong smell.",
            "Smaller than it looked in the photos.",
            "Started fraying after a few washes.",
            "The color is a bit off.",
        ),
    ),
    Category(
        slug="beauty",
        title="Beauty",
        types=(
            _T("face moisturizer", ("face moisturizer", "moisturizer", "face cream", "day cream"), (8, 70),
               ("fragrance free", "for sensitive skin", "spf 30", "oil free", "vegan"),
               ("hyaluronic acid", "shea butter", "ceramide", "aloe"),
               ("my skin gets dry in winter", "I'm simplifying my skincare routine"), sized=True),
            _T("shampoo", ("shampoo", "hair shampoo", "clarifying shampoo"), (6, 35),
               ("sulfate free", "for curly hair", "volumizing", "dandruff control"),
               ("argan oil", "tea tree", "coconut oil"),
               ("I ran out of my usual shampoo", "my hair has been really dry lately"), sized=True),
            _T("sunscreen", ("sunscreen", "sunblock", "spf lotion"), (8, 40),
               ("spf 50", "water resistant", "reef safe", "for sensitive skin"),
               ("zinc oxide", "aloe"),
               ("I'm going on a beach vacation", "I play tennis outside every weekend"), sized=True),
            _T("hair dryer", ("hair dryer", "blow dryer", "hairdryer"), (25, 200),
               ("ionic", "fast drying", "lightweight", "with diffuser", "foldable"),
               ("ceramic", "tourmaline"),
               ("my old hair dryer died", "I need a travel hair dryer")),
            _T("electric toothbrush", ("electric toothbrush", "toothbrush", "sonic toothbrush"), (20, 150),
               ("rechargeable", "pressure sensor", "2 minute timer", "travel case"),
               ("plastic",),
               ("my dentist suggested an electric toothbrush", "I'm replacing my manual toothbrush")),
            _T("face serum", ("serum", "face serum", "vitamin c serum"), (10, 80),
               ("brightening", "anti aging", "fragrance free", "vegan"),
               ("vitamin c", "niacinamide", "retinol", "hyaluronic acid"),
               ("I want to even out my skin tone", "I'm starting a skincare routine"), sized=True),
        ),
        brands=("Glowra", "Purelle", "Dermique", "Botanica", "Lumina", "Freshkin", "Velour"),
        colors=("white", "black", "pink", "lavender"),
        size_options=("1 oz", "1.7 oz", "3.4 oz", "8 oz"),
        praise=(
            "Gentle and works well for me.",
            "A little goes a long way.",
            "Noticed a difference within a week.",
            "Exactly what I was hoping for.",
        ),
        complaints=(
            "Didn't do much for me.",
            "The packaging leaked in shipping.",
            "Stopped working after a month.",
            "Not worth the price.",
        ),
    ),
    Category(
        slug="outdoors",
        title="Sports & Outdoors",
        types=(
            _T("yoga mat", ("yoga mat", "exercise mat", "workout mat"), (15, 90),
               ("non-slip", "extra thick", "with carrying strap", "eco friendly"),
               ("tpe foam", "natural rubber", "cork"),
               ("I'm doing yoga at home now", "I'm getting back into working out")),
            _T("camping tent", ("tent", "camping tent", "backpacking tent"), (45, 300),
               ("waterproof", "2 person", "4 person", "easy setup", "ultralight"),
               ("nylon", "polyester", "ripstop"),
               ("we go camping most summer weekends", "I'm planning my first backpacking trip")),
            _T("hiking backpack", ("backpack", "hiking backpack", "daypack", "rucksack"), (25, 180),
               ("waterproof", "30l", "padded straps", "hydration compatible", "lightweight"),
               ("nylon", "polyester", "ripstop"),
               ("I'm planning a hiking trip next month", "my old backpack's zipper broke")),
            _T("dumbbells", ("dumbbells", "hand weights", "free weights"), (20, 150),
               ("adjustable", "set of 2", "hex", "non-slip grip"),
               ("cast iron", "neoprene", "rubber"),
               ("I'm setting up a home gym", "I'm getting back into working out")),
            _T("sleeping bag", ("sleeping bag", "camping sleeping bag"), (30, 200),
               ("3 season", "lightweight", "compact", "20 degree"),
               ("down", "synthetic"),
               ("we go camping most summer weekends", "my kids want to camp in the backyard")),
            _T("bike helmet", ("bike helmet", "cycling helmet", "bicycle helmet"), (25, 140),
               ("adjustable", "with light", "ventilated", "mips"),
               ("polycarbonate", "eps foam"),
               ("I started biking to work", "my old helmet cracked"), sized=True),
            _T("camping chair", ("camping chair", "folding chair", "camp chair"), (20, 100),
               ("foldable", "with cup holder", "lightweight", "padded"),
               ("steel", "aluminum", "polyester"),
               ("we go to a lot of outdoor concerts", "we go camping most summer weekends")),
        ),
        brands=("Summitry", "Ridgeline", "Outpost", "Flexcore", "Wildway", "Basecamp", "Cairn"),
        colors=("black", "orange", "forest green", "blue", "gray", "purple"),
        size_options=("small", "medium", "large"),
        praise=(
            "Held up great on a week-long trip.",
            "Sturdy and well made.",
            "Light and easy to carry.",
            "Worth every penny.",
        ),
        complaints=(
            "Heavier than advertised.",
            "A seam tore on the second use.",
            "Strong chemical smell at first.",
            "Smaller than I expected.",
        ),
    ),
    Category(
        slug="toys",
        title="Toys & Games",
        types=(
            _T("building blocks", ("building blocks", "building set", "construction toy", "blocks"), (15, 120),
               ("500 pieces", "stem", "for ages 6+", "compatible with major brands"),
               ("plastic", "wood"),
               ("my son just turned six", "my niece's birthday is coming up")),
            _T("jigsaw puzzle", ("puzzle", "jigsaw puzzle", "1000 piece puzzle"), (10, 35),
               ("1000 pieces", "500 pieces", "for adults", "landscape"),
               ("cardboard", "wood"),
               ("we want fewer screens at home", "I need something for rainy weekends")),
            _T("board game", ("board game", "family game", "strategy game"), (15, 70),
               ("family friendly", "2-4 players", "strategy", "for ages 8+"),
               ("cardboard", "wood"),
               ("we're starting a family game night", "I'm looking for a holiday gift")),
            _T("plush toy", ("plush toy", "stuffed animal", "plushie"), (8, 40),
               ("super soft", "machine washable", "12 inch", "for toddlers"),
               ("plush", "organic cotton"),
               ("my niece's birthday is coming up", "I'm looking for a baby shower gift")),
            _T("remote control car", ("rc car", "remote control car", "toy car"), (20, 110),
               ("rechargeable", "off road", "high speed", "for ages 8+"),
               ("plastic", "metal"),
               ("my son just turned eight", "I'm looking for a holiday gift")),
            _T("art set", ("art set", "drawing set", "craft kit", "paint set"), (12, 60),
               ("150 pieces", "with carrying case", "washable", "for kids"),
               ("wood", "plastic"),
               ("my daughter loves drawing", "I'm looking for a birthday gift")),
        ),
        brands=("Playwise", "Brickton", "Funtastic", "Kidoodle", "Wondery", "Tinker Lane", "Jolly Oak"),
        colors=("multicolor", "red", "blue", "pastel", "green"),
        praise=(
            "My kids play with it every day.",
            "Well made and a lot of fun.",
            "Kept my nephew busy for hours.",
            "Great gift, they loved it.",
        ),
        complaints=(
            "Some pieces were missing.",
            "Broke within a week.",
            "The instructions are hard to follow.",
            "Too easy for the listed age.",
        ),
    ),
)
"""The shop's departments. Word lists, not data: every product is assembled from them."""

MODEL_NAMES: tuple[str, ...] = (
    "Glide", "Pulse", "Aero", "Nova", "Summit", "Flow", "Edge", "Core", "Vista", "Drift", "Orbit", "Echo",
    "Terra", "Zephyr", "Apex", "Luna", "Breeze", "Atlas", "Fusion", "Quest", "Spark", "Haven", "Bolt",
    "Prism", "Cove", "Ember", "Frost", "Ridge", "Tide", "Willow",
)
"""Product line names, combined with a generation number into model names like "Glide 3"."""

REVIEWERS: tuple[str, ...] = (
    "Sam K.", "Priya R.", "Jordan M.", "Alex T.", "Maria G.", "Chris L.", "Dana W.", "Lee H.", "Fatima S.",
    "Tom B.", "Nina P.", "Omar A.", "Grace Y.", "Ben O.", "Ivy C.", "Raj N.",
)

ACRONYMS: dict[str, str] = {
    "bpa": "BPA", "spf": "SPF", "usb-c": "USB-C", "led": "LED", "gps": "GPS", "mips": "MIPS", "eva": "EVA",
    "tpe": "TPE", "30l": "30L", "4k": "4K", "65w": "65W", "10000mah": "10000mAh", "20000mah": "20000mAh",
    "gore-tex": "GORE-TEX", "rc": "RC",
}
"""Words that keep their own spelling in title case."""


def pick_features(rng: random.Random, features: tuple[str, ...], count: int) -> tuple[str, ...]:
    """`count` distinct features with at most one spec (a feature with a number: "2 person", "4k"),
    so nothing is both "500 pieces" and "1000 pieces"."""
    picked: list[str] = []
    for feature in rng.sample(features, len(features)):
        if len(picked) == count:
            break
        has_spec = any(ch.isdigit() for ch in feature)
        if has_spec and any(any(ch.isdigit() for ch in other) for other in picked):
            continue
        picked.append(feature)
    return tuple(picked)


def title_case(phrase: str) -> str:
    """ "bpa free usb-c charger" -> "BPA Free USB-C Charger" (product-title style)."""
    return " ".join(ACRONYMS.get(word, word[:1].upper() + word[1:]) for word in phrase.split())
