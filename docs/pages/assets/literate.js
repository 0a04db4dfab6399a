// Reading aids of the annotated pages (classes come from docs/tooling/literate.py):
// - clicking an identifier in the code highlights its other occurrences on the page;
// - hovering a paper symbol ($h$, $d$, $k$, $p$, $\sigma$) or its code name highlights
//   both and shows what the other is called;
// - hovering or focusing a block of prose highlights the code lines it explains, and
//   hovering code highlights its prose (not on touch screens, which cannot hover);
// - the switch above the model's code chooses the traced model whose tensor shapes
//   the code shows (docs/tooling/litshapes.py);
// - a display formula wider than its column is set smaller, to fit (down to 60 %,
//   80 % on a phone, where it scrolls beyond that);
// - a table wider than its box (on a phone) gets a line under it that says it scrolls.
// Nothing here loads anything.
(function () {
  'use strict';

  // The same pairs as PAPER_SYMBOLS in docs/tooling/literate.py
  const CODE_NAMES = {h: 'd_model', d: 'n_layers', k: 'kernel_size', p: 'patch_size', σ: 'activation'};
  const SYMBOLS = {};
  for (const [symbol, name] of Object.entries(CODE_NAMES)) SYMBOLS[name] = symbol;
  // Touch screens get none of the hover aids
  const CAN_HOVER = window.matchMedia('(hover: hover)');

  // Give every occurrence of a pair the same `data-pair` (the paper symbol) and a
  // description for the tooltip. A symbol is paired only on a page that also shows its
  // code name: elsewhere the letter may mean something else (σ, a standard deviation).
  function tagPairs() {
    const symbols = [];
    document.querySelectorAll('.lit-code [data-sym], .md-typeset code').forEach((el) => {
      const name = el.dataset.sym || (el.closest('pre') ? null : el.textContent.trim());
      if (name && SYMBOLS[name]) {
        el.dataset.pair = SYMBOLS[name];
        el.dataset.pairTip = `${SYMBOLS[name]} in the paper`;
        symbols.push(SYMBOLS[name]);
      }
    });
    document.querySelectorAll('[data-paper-sym]').forEach((el) => {
      const symbol = el.dataset.paperSym;
      if (!symbols.includes(symbol)) return;
      el.dataset.pair = symbol;
      el.dataset.pairTip = `${CODE_NAMES[symbol]} in the code`;
    });
  }

  function setPair(symbol, on) {
    document.querySelectorAll(`[data-pair="${symbol}"]`).forEach((el) => {
      el.classList.toggle('lit-pair-on', on);
    });
  }

  // One tooltip for the page, placed under the hovered symbol or name
  let tip = null;

  function showTip(el) {
    if (!el.dataset.pairTip) return;
    if (tip === null) {
      tip = document.createElement('div');
      tip.className = 'lit-tip';
      tip.id = 'lit-tip';
      tip.setAttribute('role', 'tooltip');
      document.body.appendChild(tip);
    }
    tip.textContent = el.dataset.pairTip;
    tip.hidden = false;
    const box = el.getBoundingClientRect();
    tip.style.left = `${Math.max(4, Math.min(box.left, window.innerWidth - tip.offsetWidth - 4))}px`;
    tip.style.top = `${box.bottom + 4}px`;
    el.setAttribute('aria-describedby', tip.id);
  }

  function hideTip(el) {
    if (tip !== null) tip.hidden = true;
    el.removeAttribute('aria-describedby');
  }

  let highlighted = null;

  // Highlight all identifiers named `name`, or clear the highlight when it is already on.
  function highlight(name) {
    document.querySelectorAll('.lit-hl').forEach((el) => el.classList.remove('lit-hl'));
    highlighted = highlighted === name ? null : name;
    if (highlighted === null) return;
    document.querySelectorAll(`.lit-code [data-sym="${CSS.escape(name)}"]`).forEach((el) => {
      el.classList.add('lit-hl');
    });
  }

  // -- Prose and code that point at each other

  // A section's prose and code, when it has both
  function partsOf(section) {
    const docs = section.querySelector(':scope > .lit-docs');
    const code = section.querySelector(':scope > .lit-code');
    return docs && code ? [docs, code] : null;
  }

  // The prose or code under the mouse, and the prose that has the keyboard's focus:
  // the one under the mouse wins, the focused one comes back when the mouse leaves.
  const linking = {hover: null, focus: null};

  function showLinks() {
    document.querySelectorAll('.lit-linked').forEach((el) => el.classList.remove('lit-linked'));
    const part = linking.hover || linking.focus;
    if (part === null || !CAN_HOVER.matches) return;
    const [docs, code] = partsOf(part.parentElement);
    // The other side lights up: the prose, or each line of the code
    const targets = part === docs ? code.querySelectorAll('.lit-line') : [docs];
    targets.forEach((el) => el.classList.add('lit-linked'));
  }

  function setLink(kind, part) {
    if (linking[kind] === part) return;
    linking[kind] = part;
    showLinks();
  }

  function partAt(target) {
    const part = target.closest('.lit-section > .lit-docs, .lit-section > .lit-code');
    return part && partsOf(part.parentElement) ? part : null;
  }

  // Prose beside code can take the keyboard's focus, to light its code up.
  function makeProseFocusable() {
    if (!CAN_HOVER.matches) return;
    document.querySelectorAll('.lit-section > .lit-docs').forEach((docs) => {
      if (partsOf(docs.parentElement)) {
        docs.tabIndex = 0;
        docs.setAttribute('aria-label', 'Explanation of the code beside it');
      }
    });
  }

  // -- The traced model whose shapes the code shows

  const TRACE_KEY = 'lit-trace';

  function showTrace(key) {
    const buttons = document.querySelectorAll('.lit-trace-choice');
    if (![...buttons].some((b) => b.dataset.trace === key)) return;
    buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.trace === key)));
    const attribute = `data-shape-${key}`;
    document.querySelectorAll(`.lit-shape[${attribute}]`).forEach((el) => {
      el.textContent = el.getAttribute(attribute);
    });
    try {
      localStorage.setItem(TRACE_KEY, key);
    } catch (e) {
      // Storage may be off (private windows): the choice lasts for this page only
    }
  }

  function nextTrace() {
    const buttons = [...document.querySelectorAll('.lit-trace-choice')];
    const now = buttons.findIndex((b) => b.getAttribute('aria-pressed') === 'true');
    if (buttons.length) showTrace(buttons[(now + 1) % buttons.length].dataset.trace);
  }

  function restoreTrace() {
    let key = null;
    try {
      key = localStorage.getItem(TRACE_KEY);
    } catch (e) {
      return;
    }
    if (key) showTrace(key);
  }

  // -- Wide formulas and tables

  // The smallest size a formula is set at to fit its column; below it, it scrolls.
  // A phone's small screen keeps formulas larger and lets them scroll sooner.
  const MIN_FORMULA_SCALE = {wide: 0.6, phone: 0.8};
  const PHONE = window.matchMedia('(max-width: 47.984375em)');

  function fitFormulas() {
    const least = PHONE.matches ? MIN_FORMULA_SCALE.phone : MIN_FORMULA_SCALE.wide;
    document.querySelectorAll('.md-typeset .katex-display').forEach((el) => {
      el.style.fontSize = '';
      if (el.scrollWidth <= el.clientWidth + 1) return;
      const scale = Math.max(least, Math.floor(100 * el.clientWidth / el.scrollWidth) / 100 - 0.01);
      el.style.fontSize = `${scale}em`;
    });
  }

  function markWideTables() {
    document.querySelectorAll('.md-typeset__scrollwrap').forEach((wrap) => {
      let hint = wrap.nextElementSibling;
      if (!(hint && hint.classList.contains('lit-scroll-hint'))) {
        hint = document.createElement('p');
        hint.className = 'lit-scroll-hint';
        hint.textContent = 'The table is wider than the screen: scroll it sideways to see all of it.';
        wrap.after(hint);
      }
      hint.hidden = wrap.scrollWidth <= wrap.clientWidth + 1;
    });
  }

  function fitWideParts() {
    fitFormulas();
    markWideTables();
  }

  let fitPending = false;
  window.addEventListener('resize', () => {
    if (fitPending) return;
    fitPending = true;
    requestAnimationFrame(() => {
      fitPending = false;
      fitWideParts();
    });
  });

  // -- Events

  document.addEventListener('click', (event) => {
    const choice = event.target.closest('.lit-trace-choice');
    if (choice) {
      showTrace(choice.dataset.trace);
      return;
    }
    if (event.target.closest('.lit-code .lit-shape')) {
      nextTrace();
      return;
    }
    const el = event.target.closest('.lit-code [data-sym]');
    // A link still goes to the definition; the highlight stays for the way back.
    if (el) highlight(el.dataset.sym);
  });
  document.addEventListener('mouseover', (event) => {
    if (!CAN_HOVER.matches) return;
    const el = event.target.closest('[data-pair]');
    if (el) {
      setPair(el.dataset.pair, true);
      showTip(el);
    }
    setLink('hover', partAt(event.target));
  });
  document.addEventListener('mouseout', (event) => {
    const el = event.target.closest('[data-pair]');
    if (el && !el.contains(event.relatedTarget)) {
      setPair(el.dataset.pair, false);
      hideTip(el);
    }
    // Out of the window
    if (event.relatedTarget === null) setLink('hover', null);
  });
  document.addEventListener('focusin', (event) => {
    const part = partAt(event.target);
    setLink('focus', part && part.classList.contains('lit-docs') ? part : null);
  });
  document.addEventListener('focusout', (event) => {
    if (!(event.relatedTarget && partAt(event.relatedTarget))) setLink('focus', null);
  });
  // The tooltip stays where it was put: it goes when the page moves.
  window.addEventListener('scroll', () => {
    if (tip !== null) tip.hidden = true;
  }, {passive: true});

  function start() {
    tagPairs();
    makeProseFocusable();
    restoreTrace();
    fitWideParts();
    // Once the web fonts are in, the widths are final
    if (document.fonts) document.fonts.ready.then(fitWideParts);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
