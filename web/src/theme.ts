/**
 * Mantine's theme, made to meet WCAG AA contrast (4.5:1 for text; test/web/a11y.test.ts checks
 * it): buttons, filled badges and links in a color's darkest shade, white text on them; the text
 * of light badges and active menu entries darker than Mantine's shade 9 for the colors whose
 * shade 9 is too light on their pale background (green, yellow, orange…); secondary ("dimmed")
 * text in gray 7 instead of gray 6.
 */
import { type CSSVariablesResolver, createTheme, darken } from '@mantine/core';

export const theme = createTheme({ primaryShade: { light: 9, dark: 8 } });

/** colors whose shade 9 is under 4.5:1 with white or with their own shade 1 */
const PALE = ['green', 'teal', 'lime', 'yellow', 'orange', 'cyan'];

export const contrastResolver: CSSVariablesResolver = (t) => {
  const light: Record<string, string> = { '--mantine-color-dimmed': 'var(--mantine-color-gray-7)' };
  for (const name of PALE) {
    const dark = darken(t.colors[name]?.[9] ?? '#000', 0.35);
    light[`--mantine-color-${name}-filled`] = dark;
    light[`--mantine-color-${name}-light-color`] = dark;
  }
  return { variables: {}, light, dark: {} };
};
