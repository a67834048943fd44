"""Draw the example reference images and write assets/examples/examples.json.

Every image is drawn in code here (Pillow shapes, numpy gradients, simple
shading), so the project ships no copyrighted material. The output is
deterministic: running ``python assets/make_examples.py`` again writes the
same bytes.

Each picture is drawn at twice its final size and scaled down, which
smooths the edges; coordinates below are in that doubled space.
"""
import json
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent / "examples"
SS = 2  # supersampling factor


def gradient(size, top, bottom):
    """A vertical gradient from colour `top` to colour `bottom`."""
    w, h = size
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    rows = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return Image.fromarray(np.repeat(rows, w, axis=1).astype(np.uint8), "RGB")


def shade(color, f):
    return tuple(max(0, min(255, round(c * f))) for c in color)


def save(img, name):
    img = img.resize((img.width // SS, img.height // SS), Image.LANCZOS)
    img.save(OUT / name, optimize=True)


def donut():
    """A flat cartoon donut with pink icing and sprinkles."""
    W = H = 768 * SS
    cx, cy, rx, ry = 768, 740, 560, 400
    img = gradient((W, H), (205, 228, 246), (160, 196, 232))
    shadow = Image.new("L", (W, H), 0)
    ImageDraw.Draw(shadow).ellipse((cx - 580, 1050, cx + 580, 1250), fill=110)
    img.paste((90, 110, 150), mask=shadow.filter(ImageFilter.GaussianBlur(40)))

    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    d.ellipse((cx - rx, cy - ry + 90, cx + rx, cy + ry + 90), fill=(176, 108, 52))  # side
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(222, 160, 88))  # top

    def wavy(scale, waves, amp):
        return [(cx + rx * scale * math.cos(a) * (1 + amp * math.sin(waves * a)),
                 cy + ry * scale * math.sin(a) * (1 + amp * math.sin(waves * a)) + 10)
                for a in np.linspace(0, 2 * math.pi, 400)]

    d.polygon(wavy(0.90, 9, 0.05), fill=(240, 118, 166))  # icing
    d.arc((cx - 430, cy - 300, cx + 430, cy + 300), 195, 260, fill=(255, 190, 215), width=34)
    d.polygon(wavy(0.42, 7, 0.06), fill=(222, 160, 88))  # bare dough round the hole
    hole = (cx - 170, cy - 120, cx + 170, cy + 120)
    d.ellipse(hole, fill=(150, 88, 40))  # inner wall
    d.ellipse((hole[0], hole[1] + 45, hole[2], hole[3] + 45), fill=(0, 0, 0, 0))

    rng = random.Random(7)
    colors = [(255, 255, 255), (255, 214, 60), (70, 150, 240), (90, 200, 110),
              (255, 140, 40), (150, 90, 220)]
    placed = 0
    while placed < 70:
        u, v = rng.uniform(-1, 1), rng.uniform(-1, 1)
        if not 0.55 < math.hypot(u, v) < 0.82:
            continue
        x, y = cx + u * rx, cy + v * ry
        a = rng.uniform(0, math.pi)
        dx, dy = 20 * math.cos(a), 20 * math.sin(a)
        color = rng.choice(colors)
        d.line((x - dx, y - dy, x + dx, y + dy), fill=color, width=16)
        for ex, ey in ((x - dx, y - dy), (x + dx, y + dy)):  # rounded ends
            d.ellipse((ex - 8, ey - 8, ex + 8, ey + 8), fill=color)
        placed += 1
    img.paste(layer, mask=layer)
    save(img, "donut.png")


def house():
    """A child's crayon-style sketch of a house, a tree and the sun."""
    W, H = 1024 * SS, 768 * SS
    img = Image.new("RGB", (W, H), (250, 247, 238))
    d = ImageDraw.Draw(img)
    rng = random.Random(3)
    ink = (45, 45, 60)
    for y in range(120, H, 90):  # sketchbook ruling
        d.line((0, y, W, y), fill=(222, 230, 240), width=3)

    def sketch(points, fill=None, closed=True):
        """A wobbly two-pass pencil outline, with a slightly offset crayon fill."""
        if fill:
            d.polygon([(x + rng.uniform(-12, 12), y + rng.uniform(-12, 12)) for x, y in points], fill=fill)
        pts = points + points[:1] if closed else points
        for _ in range(2):
            d.line([(x + rng.uniform(-5, 5), y + rng.uniform(-5, 5)) for x, y in pts],
                   fill=ink, width=7, joint="curve")

    def circle(cx, cy, r, n=40):
        return [(cx + r * math.cos(a), cy + r * math.sin(a))
                for a in np.linspace(0, 2 * math.pi, n, endpoint=False)]

    # ground, path and sun
    sketch([(0, 1180), (500, 1150), (1100, 1190), (1600, 1160), (W, 1180), (W, H), (0, H)],
           fill=(150, 210, 120))
    sketch([(880, 1190), (1060, 1190), (1160, H - 10), (780, H - 10)], fill=(225, 200, 160))
    sketch(circle(1700, 300, 130), fill=(255, 215, 70))
    for a in np.linspace(0, 2 * math.pi, 12, endpoint=False):
        sketch([(1700 + 170 * math.cos(a), 300 + 170 * math.sin(a)),
                (1700 + 250 * math.cos(a), 300 + 250 * math.sin(a))], closed=False)
    # house: chimney, walls, roof, door, windows
    sketch([(1020, 360), (1110, 360), (1110, 540), (1020, 540)], fill=(190, 90, 70))
    sketch([(520, 700), (1320, 700), (1320, 1190), (520, 1190)], fill=(250, 225, 140))
    sketch([(440, 720), (920, 300), (1400, 720)], fill=(220, 80, 70))
    sketch([(860, 900), (1000, 900), (1000, 1190), (860, 1190)], fill=(150, 95, 60))
    sketch(circle(975, 1050, 12, 8))
    for x0 in (600, 1100):
        sketch([(x0, 820), (x0 + 160, 820), (x0 + 160, 980), (x0, 980)], fill=(160, 210, 250))
        sketch([(x0 + 80, 820), (x0 + 80, 980)], closed=False)
        sketch([(x0, 900), (x0 + 160, 900)], closed=False)
    # tree and a cloud
    sketch([(230, 1190), (300, 1190), (290, 880), (240, 880)], fill=(140, 90, 50))
    for cx, cy in ((190, 820), (340, 820), (265, 720), (265, 880)):
        sketch(circle(cx, cy, 110), fill=(90, 170, 80))
    for cx, cy, r in ((420, 260, 80), (520, 230, 100), (620, 270, 75)):
        sketch(circle(cx, cy, r), fill=(255, 255, 255))
    save(img, "house_sketch.png")


def mountains():
    """A low-poly mountain landscape on a summer day, with a lake and pines."""
    W, H = 1024 * SS, 768 * SS
    img = gradient((W, H), (95, 160, 225), (205, 230, 245))
    d = ImageDraw.Draw(img)
    rng = random.Random(11)
    d.ellipse((1560, 160, 1760, 360), fill=(255, 240, 180))

    def peak(px, py, half, base, rock, grass, levels=4):
        """A mountain cut into triangles; the sun is on the left, so left facets are lighter."""
        rows = []
        for i in range(levels + 1):
            t = i / levels
            n = 2 * i + 1
            xs = np.linspace(px - half * t, px + half * t, n)
            y = py + (base - py) * t
            rows.append([(x + (rng.uniform(-25, 25) if 0 < j < n - 1 else 0),
                          y + (rng.uniform(-20, 20) if i else 0)) for j, x in enumerate(xs)])
        for i in range(levels):
            top, bot = rows[i], rows[i + 1]  # top[j] sits straight above bot[j + 1]
            tris = [(top[0], bot[0], bot[1]), (top[-1], bot[-2], bot[-1])]
            for j in range(len(top) - 1):
                tris += [(top[j], top[j + 1], bot[j + 2]), (top[j], bot[j + 1], bot[j + 2])]
            for tri in tris:
                mx = sum(p[0] for p in tri) / 3
                h = (sum(p[1] for p in tri) / 3 - py) / (base - py)  # 0 at the peak, 1 at the foot
                f = (1.12 if mx < px else 0.82) - 0.12 * abs(mx - px) / half + rng.uniform(-0.05, 0.05)
                mix = min(1.0, max(0.0, (h - 0.45) / 0.4))
                color = [r * (1 - mix) + g * mix for r, g in zip(rock, grass)]
                d.polygon(tri, fill=shade(color, f))

    for px, py, half in ((420, 520, 620), (1350, 460, 700), (2000, 620, 500)):  # far range
        peak(px, py, half, 1000, (150, 160, 195), (130, 150, 180), levels=3)
    for px, py, half in ((800, 600, 560), (1600, 700, 520)):  # near range
        peak(px, py, half, 1060, (140, 115, 100), (95, 160, 80))
    # meadow, lake and pines
    d.rectangle((0, 1000, W, H), fill=(110, 175, 85))
    for x in range(0, W, 160):
        d.polygon([(x, 1000), (x + 160, 1000), (x + 80, 1060 + rng.randint(0, 40))], fill=(125, 190, 95))
    d.polygon([(300, 1180), (900, 1110), (1500, 1140), (1800, 1260), (1200, 1380), (500, 1340)],
              fill=(80, 150, 210))
    d.polygon([(300, 1180), (900, 1110), (1000, 1250), (500, 1340)], fill=(110, 175, 225))
    for x, y, s in ((150, 1400, 1.2), (280, 1470, 1.0), (1750, 1420, 1.3), (1900, 1350, 1.0),
                    (1950, 1500, 1.1), (1150, 1130, 0.6), (1230, 1120, 0.5)):
        d.rectangle((x - 12 * s, y, x + 12 * s, y + 50 * s), fill=(100, 70, 45))
        for k in range(3):
            top, w = y - 260 * s + 70 * k * s, (70 + 30 * k) * s
            d.polygon([(x, top), (x - w, top + 130 * s), (x, top + 130 * s)], fill=(40, 110, 60))
            d.polygon([(x, top), (x + w, top + 130 * s), (x, top + 130 * s)], fill=(30, 85, 50))
    save(img, "mountains_lowpoly.png")


def mug():
    """A plain white ceramic mug on a wooden table."""
    W = H = 768 * SS
    img = gradient((W, H), (232, 226, 215), (205, 196, 182))
    img.paste(gradient((W, H - 1000), (196, 150, 105), (160, 115, 75)), (0, 1000))
    x0, x1, top, bot, ery = 470, 1070, 470, 1200, 70
    cx, rx = (x0 + x1) / 2, (x1 - x0) / 2

    shadow = Image.new("L", (W, H), 0)
    ImageDraw.Draw(shadow).ellipse((x0 - 40, bot - 60, x1 + 260, bot + 90), fill=140)
    img.paste((90, 60, 35), mask=shadow.filter(ImageFilter.GaussianBlur(30)))

    d = ImageDraw.Draw(img)
    for width, color in ((92, (200, 200, 205)), (56, (240, 240, 244))):  # handle
        d.ellipse((x1 - 150, 640, x1 + 210, 1020), outline=color, width=width)

    # body: a cylinder lit from the left (brightness follows cos of the angle round it)
    body = Image.new("L", (W, H), 0)
    m = ImageDraw.Draw(body)
    m.ellipse((x0, bot - ery, x1, bot + ery), fill=255)
    m.rectangle((x0, top, x1, bot), fill=255)
    u = np.clip((np.arange(W) - cx) / rx, -1, 1)
    light = 0.72 + 0.28 * np.cos(np.arcsin(u) + 0.5) + 0.1 * np.exp(-((u + 0.45) / 0.08) ** 2)
    cols = np.clip(np.outer(light, (245, 245, 250)), 0, 255).astype(np.uint8)
    shading = Image.fromarray(np.repeat(cols[None], H, axis=0), "RGB")
    img.paste(shading, mask=body)

    d.ellipse((x0, top - ery, x1, top + ery), fill=(246, 246, 250))  # rim
    ix0, iy0, ix1, iy1 = x0 + 26, top - ery + 18, x1 - 26, top + ery - 14  # the opening
    hole = Image.new("L", (ix1 - ix0, iy1 - iy0), 0)
    ImageDraw.Draw(hole).ellipse((0, 0, hole.width - 1, hole.height - 1), fill=255)
    img.paste(gradient(hole.size, (110, 108, 116), (225, 225, 232)), (ix0, iy0), mask=hole)
    save(img, "mug.png")


def pattern():
    """A repeating tile of lemons and leaves on navy blue (it tiles seamlessly)."""
    W = H = 768 * SS
    img = Image.new("RGB", (W, H), (30, 45, 90))
    d = ImageDraw.Draw(img)
    rng = random.Random(5)

    def rotated(points, x, y, a):
        c, s = math.cos(a), math.sin(a)
        return [(x + px * c - py * s, y + px * s + py * c) for px, py in points]

    t = np.linspace(0, 2 * math.pi, 120)
    lemon = [(150 * math.cos(a) * (1 + 0.15 * math.cos(a) ** 20), 105 * math.sin(a)) for a in t]
    shine = [(-40 + 50 * math.cos(a), -45 + 22 * math.sin(a)) for a in t]
    leaf = [(150 * s, 45 * math.sin(math.pi * s)) for s in np.linspace(0, 1, 30)]
    leaf += [(150 * s, -45 * math.sin(math.pi * s)) for s in np.linspace(1, 0, 30)]

    step = W // 4
    for row in range(4):
        for col in range(4):
            x, y = col * step + (step // 2 if row % 2 else 0) + step // 2, row * step + step // 2
            a = rng.uniform(-0.6, 0.6)
            for dx in (-W, 0, W):  # draw wrapped copies so the tile repeats seamlessly
                for dy in (-H, 0, H):
                    lx, ly = x + dx, y + dy
                    d.polygon(rotated(leaf, lx + 120 * math.cos(a - 0.9), ly + 120 * math.sin(a - 0.9), a - 1.6),
                              fill=(70, 160, 90))
                    d.polygon(rotated(lemon, lx, ly, a), fill=(250, 210, 50))
                    d.polygon(rotated(shine, lx, ly, a), fill=(255, 240, 150))
                    for ox, oy in ((step // 2, step // 2), (step // 2, 0)):
                        d.ellipse((lx + ox - 14, ly + oy - 14, lx + ox + 14, ly + oy + 14), fill=(235, 235, 245))
    save(img, "pattern.png")


EXAMPLES = [
    {"name": "Donut, made real", "prompt": "make this donut realistic, studio photo",
     "images": ["donut.png"]},
    {"name": "Sketch to watercolor", "prompt": "turn this sketch into a watercolor painting",
     "images": ["house_sketch.png"]},
    {"name": "Winter evening", "prompt": "make it a snowy winter evening",
     "images": ["mountains_lowpoly.png"]},
    {"name": "Pattern on a mug",
     "prompt": "put the lemon pattern from image 2 on the mug in image 1, product photo",
     "images": ["mug.png", "pattern.png"]},
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for draw in (donut, house, mountains, mug, pattern):
        draw()
    examples = [{**e, "loras": [], "guidance_scale": 2.5, "num_inference_steps": 28} for e in EXAMPLES]
    (OUT / "examples.json").write_text(json.dumps(examples, indent=2) + "\n")


if __name__ == "__main__":
    main()
