/**
 * English and Dutch words that are also given names or surnames, folded (lower case, no accents).
 * At the start of a sentence or in lower case such a word is too often just the word ("Will you",
 * "Mark your calendars", "Ben je er?", "Groot nieuws", "de bakker") for cutNames to take it for the
 * person there; inside a sentence, capitalised, it is still cut. Any other word of a name is cut
 * in those places too when the text shows the person elsewhere.
 */
export const ORDINARY_WORDS_THAT_ARE_NAMES: ReadonlySet<string> = new Set(
  [
    // English given names that are words
    'will mark may june april august bill grace hope faith joy rose lily daisy iris jack frank sue pat',
    'rob don ray art bob carol dawn eve guy hunter ivy jay jean job lance max miles nick penny rich',
    'robin sandy skip summer wade warren chase chip christian cliff dean drew earl forest gene gale',
    'heath holly amber autumn crystal destiny ginger heather misty pearl ruby storm winter bud buck',
    'brook grant sterling sunny honey melody harmony sage reed rock river sky star colt dash',
    'duke chance cash hazel jade violet jasmine olive poppy willow basil clay dusty hale',
    'king major rusty stormy trinity unity verity sol sunday patience prudence mercy constance',
    'felicity charity dot ben dick',
    // English surnames that are words
    'smith baker cook brown white green black gray grey wood woods stone bird fox wolf bush bell long',
    'short little best small strong wise bishop fisher hunt rice ward west north south east ash bay',
    'dale field ford frost gates golden hart hawk hay holiday house knight lane law lee march marsh',
    'moon more noble oak park peace pool porter power rain read ridge rivers root sharp',
    'snow spring steel stern sweet swift temple thorn tower true waters well wells wild wind',
    'wing wren carpenter mason miller turner walker cooper archer butler page price',
    'young love hall hill church fletcher glover hunter potter shepherd slater thatcher',
    'weaver cross rose lamb bull crane swan drake finch sparrow robin lock banks beach brook',
    'brooks burns bush lake mills moss nightingale pike rich salmon stock street wall',
    // Dutch given names that are words
    'ben wil roos lot jet hoop lente zon maan ster bas mees vos rob fleur lies ties rosa jan mark',
    'job frank amber jade iris robin zomer winter mei juni juli april augustus lief liefde',
    // Dutch surnames that are words
    'bos wit groot klein jong boer haan koning prins bakker visser smit kok kuiper brouwer koster',
    'post dam berg hoek groen zwart beek kramer jager schipper molenaar mol mus zwaan haas vink hart',
    'hof huis meer veen wal storm dijk laan weg zee water brug kerk poort heer graaf bruin rood blauw',
    'lange korte oude meester knecht vogel ruiter herder wolf leeuw beer valk kraai uil raaf',
    'bruggen linden wouden bergen akker weide tuin bloem',
    'zanger kramer slager snijder schaap bok stier koe paard ree hert das otter kat hond muis',
  ]
    .join(' ')
    .split(' '),
);
