-- app_logic.html_escape: the one escape of the pages (consent links) and pictures (the logo
-- heatmap's SVG) the database writes (db/functions/000-foundation.sql).
begin;
select plan(4);

select is(
    app_logic.html_escape($t$<a href="x" title='y'>Tom & Jerry</a>$t$),
    '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;',
    'the five characters of markup are escaped, the apostrophe too'
);
select is(app_logic.html_escape('&lt;'), '&amp;lt;', 'an ampersand is escaped first: an entity in the text stays text');
select is(app_logic.html_escape(null), null, 'null stays null');
select matches(
    app_logic.logo_heatmap_svg(
        '{"size": 1, "maxCount": 0, "days": "1", "theme": "<x>\"''&", "points": 0, "posts": 0, "counts": [[0]]}'
    ),
    'Logo interactions: theme &lt;x&gt;&quot;&#39;&amp;, last day',
    'the SVG picture escapes what it prints with the same function'
);

select * from finish();
rollback;
