// Render a batch of TeX formulas with KaTeX, for the site build.
//
// Reads a JSON array of {tex, display} from stdin and writes a JSON array of
// {html} or {error} in the same order to stdout: one process renders every
// formula of the site.
'use strict';
const katex = require('katex');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
    const results = JSON.parse(input).map(({tex, display}) => {
        try {
            return {html: katex.renderToString(tex, {
                displayMode: display,
                // MathML for screen readers and copy, HTML for the eye
                output: 'htmlAndMathml',
                throwOnError: true,
                // Non-standard LaTeX is an error, not a console warning nobody
                // reads; only Unicode letters such as ≥ typed in math are fine.
                strict: (code) => (code === 'unicodeTextInMathMode' ? 'ignore' : 'error'),
            })};
        } catch (e) {
            return {error: e.message};
        }
    });
    process.stdout.write(JSON.stringify(results));
});
