/* LeadWarm: text shown without the emoji this browser has no font for. A machine with no emoji font
 * draws 👋 as an empty box, which says nothing; the text reads as well without it. Shared by the chat
 * page (/chat) and the dashboard's widget preview: window.LeadWarmGlyphs.visible(text, font). */
window.LeadWarmGlyphs = (() => {
  const EMOJI = /\p{Extended_Pictographic}(?:\uFE0F|\u200D\p{Extended_Pictographic}|[\u{1F3FB}-\u{1F3FF}])*\s?/gu;
  const known = new Map();
  let canvas = null;

  // Whether `ch` draws differently from a private-use code point (which no font here draws: the box).
  function drawable(ch, font) {
    const key = font + "\n" + ch;
    if (known.has(key)) return known.get(key);
    canvas = canvas || document.createElement("canvas");
    canvas.width = 48; canvas.height = 48;
    const g = canvas.getContext("2d", { willReadFrequently: true });
    const draw = (text) => {
      g.clearRect(0, 0, 48, 48); g.font = font; g.fillStyle = "#000"; g.textBaseline = "top";
      g.fillText(text, 2, 2);
      return g.getImageData(0, 0, 48, 48).data.join(",");
    };
    const answer = draw(ch) !== draw("\uE000");
    known.set(key, answer);
    return answer;
  }

  // `text` without the emoji (and the space after each) that `font` (a CSS font, e.g. an element's
  // computed font) cannot draw; any other text as it is.
  function visible(text, font) {
    const value = String(text || "");
    return value.replace(EMOJI, (match) => (drawable(match.trim(), font || "16px sans-serif") ? match : ""));
  }

  return Object.freeze({ visible, drawable });
})();
