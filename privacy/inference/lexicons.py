"""The words a draft contract recognizes in column names (in English, Spanish, French,
German, Italian, Dutch, Portuguese, Polish and Swedish), and common first names.

>>> _IDENTIFIER_WORDS["courriel"], _QI_WORDS["leeftijd"]
('an email address', 'age')
>>> {"dob", "zip"} <= _BIRTH_WORDS | _POSTCODE_WORDS
True
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _by_word(groups: dict[str, str]) -> dict[str, str]:
    """{word: what it names} from {what: its words}, in the order given (first match wins)."""
    return {word: what for what, words in groups.items() for word in words.split()}


#: words of a column naming a person's name
_PERSON_NAME_WORDS = _words("""
    name names firstname lastname surname fullname givenname familyname middlename maidenname
    forename nombre nombres apellido apellidos nom prenom prénom vorname nachname familienname
    nome cognome naam voornaam achternaam imie imię nazwisko sobrenome fornavn efternamn fornamn
    förnamn navn
""")
#: tokens that may qualify "name" and still mean a person's name
_PERSON_QUALIFIERS = _words("""
    first last full given family middle maiden fake user person patient employee customer client
    member display sur fore nick contact owner student staff subject applicant worker the of
""")
#: words of a direct identifier's name, by what it names
_IDENTIFIER_WORDS = _by_word({
    "an email address": "email mail correo courriel epost emailaddress",
    "a phone number": (
        "phone telephone tel mobile cell cellphone telefono teléfono telefon téléphone handy "
        "fax phonenumber telefoon celular"
    ),
    "an address": (
        "address street addr direccion dirección adresse strasse straße indirizzo calle rue "
        "adres endereco"
    ),
    "a national id": (
        "ssn socialsecurity nino nin nif nie dni bsn steuerid codicefiscale nir insee "
        "personnummer pesel cpf aadhaar passport pasaporte reisepass taxid tin nationalid "
        "curp rfc driverslicense"
    ),
    "a bank account": "iban bankaccount accountnumber konto rekening",
    "a card number": "creditcard cardnumber ccnumber kreditkarte tarjeta",
    "an IP address": "ip ipaddress",
    "a URL": "url website homepage",
    "a user name": "username login",
    "a secret": "password",
})
#: words of an id's name
_ID_WORDS = _words("""
    id ids uuid guid identifier key number no nr num nummer numero número code mrn ident
    identificador
""")
#: words of a quasi-identifier's name, by what it names
_QI_WORDS = _by_word({
    "age": "age edad alter âge eta età leeftijd idade wiek alder ålder",
    "gender": "gender sex sexo genre sexe geschlecht sesso geslacht genero género plec kon kön",
    "race or ethnicity": "race ethnicity ethnic raza etnia",
    "nationality": "nationality nacionalidad citizenship nationalite staatsangehorigkeit",
    "religion": "religion",
    "marital status": "marital maritl maritalstatus married estadocivil familienstand etatcivil",
    "education": "education educ degree schooling educacion bildung istruzione opleiding",
    "location": (
        "region city town country county province ciudad stadt ville citta municipality "
        "district pais land"
    ),
    "employment": (
        "department dept occupation jobrole jobtitle profession abteilung departamento "
        "position"
    ),
})
#: words of a birth date's name
_BIRTH_WORDS = _words("""
    birth birthdate birthday dob dateofbirth geburtsdatum geburtstag nacimiento fechanacimiento
    naissance nascita geboortedatum nascimento
""")
#: words of a postcode's name
_POSTCODE_WORDS = _words("""
    zip zipcode postcode postal postalcode plz postleitzahl codigopostal cap postcodes cp
""")
#: words of a time column's name
_TIME_WORDS = _words("""
    date day year month week quarter time timestamp datetime period fecha datum jahr annee année
    anno año dia mes monat mois created updated yr
""")
#: words that make a time-like name a count or a duration
_NOT_TIME = _words("last per times since in num number count years days")
#: name tokens of a column that names a person (not a record, a test or an order)
_PERSON_WORDS = _words("""
    person people patient employee emp staff worker customer client member user subject
    participant respondent student pupil applicant citizen resident individual seqn persid
    personid paciente empleado cliente mitarbeiter kunde salarie dipendente medewerker klant
    participante
""")
#: name tokens of ids that are not people
_NOT_PERSON_WORDS = _words("""
    test order transaction invoice visit encounter sample record row event session request
    ticket item product project file batch specimen lab claim case line
""")
#: a small multi-language list of common first names (lower case) for content detection
_FIRST_NAMES = _words("""
    james john robert michael william david richard joseph thomas charles mary patricia
    jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret
    sandra ashley emily donna michelle carol amanda melissa deborah stephanie rebecca
    laura helen anna emma olivia noah liam sophia mia isabella ava lucas leon paul peter
    hans maria jose juan carlos luis javier miguel antonio manuel francisco pedro jorge
    ana carmen lucia sofia marta elena pablo diego sergio marie jean pierre michel
    philippe alain nicolas julien camille lea chloe manon louis hugo giulia giuseppe marco
    luca francesco alessandro andrea matteo sara chiara jan piet kees daan sanne lotte
    joao tiago rafael beatriz mariana piotr krzysztof tomasz agnieszka katarzyna erik lars
    anders johan karin ingrid astrid mohammed ahmed ali fatima omar wei li ming yuki
    hiroshi sakura raj priya amit anil sunita kevin brian george edward ronald timothy
    jason jeffrey ryan jacob gary eric stephen jonathan larry justin scott brandon frank
    benjamin gregory samuel raymond patrick alexander jack dennis jerry tyler aaron henry
    adam douglas nathan zachary kyle walter harold carl arthur gerald roger keith jeremy
    lawrence sean christian ethan austin joe albert jesse willie billy bruce bryan ralph
    roy jordan eugene wayne alan russell gabriel randy philip harry vincent bobby johnny
    logan penny grace julia hannah kate katie rose alice
""")
