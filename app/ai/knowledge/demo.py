"""A demo tenant: SunnyWatt, a residential solar and energy-renovation installer.

:data:`DEMO_QA` is its knowledge base (13 English and 13 French entries on the same topics; each
language's answers speak only of what that language's demo playbook offers: solar panels and
batteries in English, insulation and heat pumps in French, which says it installs no solar panels) and
:data:`DEMO_AI_CONFIG` its ``aiConfig`` document, with the seed's camelCase keys. Used by the demo
tenant, the simulator and tests. Answers avoid hard promises: prices, savings and delays are stated as
ranges that depend on the site survey. MaPrimeRénov' and the French feed-in tariff are named as
schemes the lead's eligibility for is checked against, never as guaranteed amounts.
"""

from __future__ import annotations

from typing import Any

from app.ai.knowledge.retrieval import QAEntry

__all__ = ["DEMO_AI_CONFIG", "DEMO_QA"]


def _qa(entry_id: str, language: str, category: str, question: str, response: str, tags: str) -> QAEntry:
    return QAEntry(
        id=entry_id,
        language=language,
        category=category,
        question=question,
        response=response,
        tags=tags.split(),
        is_custom=False,
        usage_count=0,
        success_rate=0.0,
    )


_EN = [
    _qa(
        "en-price",
        "en",
        "pricing",
        "What is the price of a solar installation?",
        "It depends on your roof and your consumption: most home solar systems we fit range from a "
        "few kilowatt-peak to about 9 kWp, and a battery adds to the price. We give you an exact, "
        "itemised price after a free site survey.",
        "price cost costs pricing expensive cheap budget how-much panels kwp tariff rate system average "
        "semi detached terraced bedroom bed",
    ),
    _qa(
        "en-financing",
        "en",
        "financing",
        "Do you offer financing or payment plans?",
        "Yes. You can pay in instalments through our partner lenders, subject to their approval; "
        "monthly amounts depend on the project and the term you choose. We show the options with "
        "your quote.",
        "financing finance loan credit instalments installments monthly payment pay plan lease spread",
    ),
    _qa(
        "en-subsidies",
        "en",
        "subsidies",
        "Are there grants or subsidies for solar panels?",
        "Often, yes: depending on where you live and your income, local and national schemes can "
        "lower the cost. We check which ones you are eligible for during the survey and handle the "
        "paperwork with you.",
        "grant grants subsidy subsidies incentive incentives rebate tax credit government aid help",
    ),
    _qa(
        "en-install-time",
        "en",
        "installation",
        "How long does the installation take?",
        "The work on site usually takes one to three days for a house. Counting the survey, permits "
        "and grid connection, plan for a few weeks to a couple of months from signature to switch-on.",
        "installation install duration long days weeks delay schedule fitting timeline running quickly",
    ),
    _qa(
        "en-warranty",
        "en",
        "warranty",
        "What warranty do you provide?",
        "Panels carry the manufacturer's product and performance warranties (typically 20 to 25 "
        "years on performance), inverters their own, and our workmanship is covered by our "
        "installation warranty and insurance. Details are in your quote.",
        "warranty warranties guarantee guaranteed insurance covered cover years",
    ),
    _qa(
        "en-maintenance",
        "en",
        "maintenance",
        "Do solar panels need maintenance?",
        "Very little: an occasional visual check and, in dusty areas, a clean. The monitoring app "
        "warns you if production drops. We offer an optional yearly maintenance visit.",
        "maintenance maintain cleaning clean service servicing upkeep repair monitoring",
    ),
    _qa(
        "en-area",
        "en",
        "coverage",
        "Which areas do you cover?",
        "We install across our region from our local teams; tell us your postcode and we will "
        "confirm that we cover your town.",
        "area areas region location located based where cover coverage zone postcode city town near local",
    ),
    _qa(
        "en-quote",
        "en",
        "quotes",
        "How does getting a quote work?",
        "It is free and without obligation: a short call to understand your needs, then a site "
        "survey (roof, orientation, shading, electrical panel), then a written quote with the "
        "expected production.",
        "quote quotes quotation estimate free survey visit assessment obligation process",
    ),
    _qa(
        "en-roof",
        "en",
        "roofs",
        "Can you install panels on any type of roof?",
        "Most pitched roofs (tiles, slate, metal) and flat roofs work; orientation, shading and the "
        "roof's condition matter. Ground-mounted systems are an option when the roof does not suit.",
        "roof roofs roofing tile tiles slate flat pitched orientation "
        "facing south east west north shading shade suitable type",
    ),
    _qa(
        "en-battery",
        "en",
        "battery",
        "Should I add a battery to store solar energy?",
        "A battery lets you use your daytime production in the evening. Whether it pays off depends "
        "on your consumption profile and tariffs; we model it with and without a battery in your "
        "quote.",
        "battery batteries storage store storing night evening backup",
    ),
    _qa(
        "en-roi",
        "en",
        "roi",
        "How much will I save and when does it pay for itself?",
        "Savings depend on your consumption, how much of the production you use yourself, and "
        "electricity prices. Your quote includes an estimate of yearly savings and the payback "
        "period for your home.",
        "save savings saving return investment roi payback pay bill bills profitable worth",
    ),
    _qa(
        "en-sizing",
        "en",
        "sizing",
        "How many solar panels do I need?",
        "It depends on how much electricity you use and on your roof. As a rough guide, a house "
        "often needs 8 to 14 panels (about 3 to 6 kWp). Your adviser works out the exact number from "
        "your bills and the survey of your roof, so you don't need to know it now.",
        "many number panels panel size sizing big large small capacity power kwp kw kilowatt need "
        "enough consumption usage",
    ),
    _qa(
        "en-about",
        "en",
        "company",
        "Who is SunnyWatt?",
        "SunnyWatt is a residential solar installer: our own certified teams design, install and "
        "maintain solar panels and home batteries for homeowners.",
        "sunnywatt company about who you team certified installer business experience",
    ),
]

_FR = [
    _qa(
        "fr-prix",
        "fr",
        "tarifs",
        "Quel est le prix d'une installation solaire ?",
        "Cela dépend des travaux et de votre logement : une isolation se chiffre selon la surface "
        "et l'isolant, une pompe à chaleur selon la puissance dont votre logement a besoin. Nous vous "
        "remettons un prix précis et détaillé, aides déduites, après une visite technique gratuite.",
        "prix coût coûte tarif tarifs combien cher budget panneaux kwc montant moyenne revient pac",
    ),
    _qa(
        "fr-financement",
        "fr",
        "financement",
        "Proposez-vous un financement ou un paiement en plusieurs fois ?",
        "Oui. Vous pouvez payer en plusieurs fois grâce à nos organismes partenaires, sous réserve "
        "d'acceptation ; les mensualités dépendent du projet et de la durée choisie. Nous vous "
        "présentons les options avec le devis.",
        "financement financer crédit prêt mensualités mensualité "
        "paiement payer échelonné échelonner étaler facilités fois",
    ),
    _qa(
        "fr-aides",
        "fr",
        "aides",
        "Quelles aides existent, comme MaPrimeRénov' ?",
        "Selon votre logement et vos revenus, plusieurs dispositifs peuvent réduire la facture : "
        "MaPrimeRénov' et les primes CEE pour l'isolation et les pompes à chaleur, l'éco-prêt à taux "
        "zéro et la TVA réduite dans certains cas. Nous vérifions votre éligibilité et vous "
        "accompagnons dans les démarches.",
        "aide aides subvention subventions maprimerenov prime primes "
        "état tva éligibilité éligible droit cee financière pac",
    ),
    _qa(
        "fr-delai",
        "fr",
        "installation",
        "Combien de temps dure l'installation ?",
        "Sur place, l'isolation des combles prend généralement une journée, la pose d'une pompe à "
        "chaleur deux à trois jours, une isolation des murs par l'extérieur une à trois semaines. En "
        "comptant la visite et les démarches d'aides, comptez quelques semaines à deux mois entre la "
        "signature et la fin du chantier.",
        "installation installer pose poser durée temps délai délais jours semaines planning rapidement vite",
    ),
    _qa(
        "fr-garantie",
        "fr",
        "garantie",
        "Quelles sont vos garanties ?",
        "Nos travaux d'isolation et la pose de pompes à chaleur sont couverts par notre garantie "
        "décennale ; la pompe à chaleur bénéficie en plus de la garantie du fabricant sur ses pièces "
        "et son compresseur. Le détail figure dans le devis.",
        "garantie garanties garanti décennale assurance couvert ans années pac",
    ),
    _qa(
        "fr-entretien",
        "fr",
        "entretien",
        "Les panneaux solaires demandent-ils de l'entretien ?",
        "Une isolation ne demande pas d'entretien. Une pompe à chaleur doit être entretenue par un "
        "professionnel tous les deux ans (c'est obligatoire pour la plupart des modèles) ; nous "
        "proposons un contrat d'entretien en option.",
        "entretien entretenir nettoyage nettoyer maintenance réparation suivi panne pac",
    ),
    _qa(
        "fr-zone",
        "fr",
        "zone",
        "Dans quelle zone intervenez-vous ?",
        "Nous intervenons dans toute notre région avec nos équipes locales ; donnez-nous votre code "
        "postal et nous vous confirmons que votre commune est couverte.",
        "zone région secteur département où situés intervenir intervention ville commune proximité",
    ),
    _qa(
        "fr-devis",
        "fr",
        "devis",
        "Comment se passe un devis ?",
        "C'est gratuit et sans engagement : un court appel pour comprendre votre besoin, puis une "
        "visite technique (combles, murs, chauffage actuel, tableau électrique), puis un devis écrit "
        "et détaillé avec les aides auxquelles vous avez droit.",
        "devis estimation gratuit engagement visite technique étude démarche étapes",
    ),
    _qa(
        "fr-toiture",
        "fr",
        "toitures",
        "Pouvez-vous installer des panneaux sur tous les types de toit ?",
        "Nous ne posons pas de panneaux solaires. Côté toiture, nous isolons les combles perdus ou "
        "aménagés sous tous les types de couverture (tuiles, ardoises, bac acier) ; l'état de la "
        "charpente et de la toiture est vérifié lors de la visite technique.",
        "toit toits toiture tuile tuiles ardoise plat pente "
        "orientation orienté nord sud est ouest ombre ombrage type",
    ),
    _qa(
        "fr-batterie",
        "fr",
        "batterie",
        "Faut-il une batterie pour stocker l'énergie solaire ?",
        "Nous ne posons ni panneaux solaires ni batteries de stockage. Pour "
        "consommer moins, nous isolons votre logement et installons des pompes à chaleur ; votre "
        "conseiller vous dira ce qui compte le plus chez vous.",
        "batterie batteries stockage stocker nuit soir autonomie utile intérêt",
    ),
    _qa(
        "fr-rentabilite",
        "fr",
        "rentabilité",
        "Combien vais-je économiser et en combien de temps c'est rentable ?",
        "La baisse de votre facture dépend de votre logement, de votre chauffage actuel et du prix "
        "de l'énergie. Le devis comprend une estimation des économies annuelles de chauffage et du délai "
        "de retour sur investissement pour votre logement.",
        "économie économies économiser rentable rentabilité retour investissement amortissement "
        "facture factures",
    ),
    _qa(
        "fr-dimensionnement",
        "fr",
        "dimensionnement",
        "Combien de panneaux ou quelle puissance faut-il pour mon logement ?",
        "Pour une pompe à chaleur, la puissance dépend de la surface de votre maison ou de votre "
        "appartement, de son isolation et du climat de votre région (nous ne posons pas de panneaux "
        "solaires). Votre conseiller calcule la bonne puissance à partir de vos factures et de la "
        "visite technique : inutile de la connaître maintenant.",
        "nombre panneaux panneau puissance taille dimensionnement dimensionner dimensionne kwc kw "
        "kilowatt besoin besoins faut suffisant suffit consommation grande grosse",
    ),
    _qa(
        "fr-societe",
        "fr",
        "entreprise",
        "Qui est SunnyWatt ?",
        "SunnyWatt est une entreprise de rénovation énergétique pour les particuliers : nos propres "
        "équipes certifiées RGE isolent combles et murs, et posent et entretiennent des pompes à "
        "chaleur.",
        "sunnywatt société entreprise qui êtes équipe rge certifié installateur expérience",
    ),
]

#: The demo knowledge base, English entries first.
DEMO_QA: list[QAEntry] = [*_EN, *_FR]

#: The demo tenant's ``aiConfig`` document (the seed's keys).
DEMO_AI_CONFIG: dict[str, Any] = {
    "companyName": "SunnyWatt",
    "industry": "Residential solar and energy renovation",
    "targetAudience": "Homeowners of detached houses who want to lower their energy bills",
    "mainProduct": "Rooftop solar panel installations, with optional battery storage and heat pumps",
    "painPoints": [
        "Rising electricity bills",
        "Unsure whether their roof is suitable",
        "Confused by subsidies and paperwork",
        "Fear of unreliable installers",
    ],
    "uniqueValue": "Our own certified local teams handle the survey, paperwork, installation and "
    "maintenance, with a free no-obligation quote",
    "competitors": "National solar installers and local roofers offering solar",
    "objectives": [
        "Qualify homeowners (owner, house, roof, bill, timeline)",
        "Book a free site survey",
        "Answer questions about price, financing and subsidies without promising amounts",
    ],
    "noGoTopics": [
        "Guaranteed savings or payback figures",
        "Exact prices before the site survey",
        "Politics",
        "Competitors' quality",
    ],
    "brandMemory": {
        "tone": "Warm, clear and honest; vouvoiement in French; short messages",
        "keywords": ["free survey", "certified installers", "save on your bills", "local team"],
        "values": ["Honesty", "Quality workmanship", "Sustainability", "Local service"],
    },
}
