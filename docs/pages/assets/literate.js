// Reading aids of the annotated pages (classes come from docs/tooling/literate.py):
// - clicking an identifier in the code highlights its other occurrences on the page;
// - hovering a paper symbol ($h$, $d$, $k$, $p$) or its code name highlights both.
(function () {
  'use strict';

  const CODE_NAMES = {h: 'd_model', d: 'n_layers', k: 'kernel_size', p: 'patch_size'};
  const SYMBOLS = {};
  for (const [symbol, name] of Object.entries(CODE_NAMES)) SYMBOLS[name] = symbol;

  // Give every occurrence of a pair the same `data-pair` (the paper symbol) and a tooltip.
  function tagPairs() {
    document.querySelectorAll('[data-paper-sym]').forEach((el) => {
      el.dataset.pair = el.dataset.paperSym;
    });
    document.querySelectorAll('.lit-code [data-sym], .md-typeset code').forEach((el) => {
      const name = el.dataset.sym || (el.closest('pre') ? null : el.textContent.trim());
      if (name && SYMBOLS[name]) el.dataset.pair = SYMBOLS[name];
    });
    document.querySelectorAll('[data-pair]').forEach((el) => {
      const symbol = el.dataset.pair;
      el.title = `${symbol} in the paper is ${CODE_NAMES[symbol]} in the code`;
    });
  }

  function setPair(symbol, on) {
    document.querySelectorAll(`[data-pair="${symbol}"]`).forEach((el) => {
      el.classList.toggle('lit-pair-on', on);
    });
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

  document.addEventListener('click', (event) => {
    const el = event.target.closest('.lit-code [data-sym]');
    // A link still goes to the definition; the highlight stays for the way back.
    if (el) highlight(el.dataset.sym);
  });
  document.addEventListener('mouseover', (event) => {
    const el = event.target.closest('[data-pair]');
    if (el) setPair(el.dataset.pair, true);
  });
  document.addEventListener('mouseout', (event) => {
    const el = event.target.closest('[data-pair]');
    if (el) setPair(el.dataset.pair, false);
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', tagPairs);
  } else {
    tagPairs();
  }
})();
