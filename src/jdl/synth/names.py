"""Embedded name lists for synthetic identities (a British mix, most common first).

Names are drawn with Zipf-like weights by rank, so common names repeat often enough
that identity collisions on name + date of birth + sex are rare but do happen, as in
real national records.
"""

from __future__ import annotations

import numpy as np

MALE_FORENAMES: tuple[str, ...] = tuple(
    """
    James John David Michael Daniel Thomas Christopher Paul Mark Andrew Matthew Robert Richard
    Jack Ryan Lee Adam Luke Darren Craig Jamie Scott Liam Steven Kevin Anthony Joshua Dean
    Stephen Gary Peter Ben Jordan Connor Callum Kyle Aaron Wayne Jason Sean Nathan Shaun Carl
    Martin Simon Ian Alan Brian Kieran Lewis Josh Samuel William George Harry Charlie Oliver
    Jake Reece Bradley Ashley Alexander Joseph Tyler Mohammed Muhammad Ali Ahmed Imran Hassan
    Usman Bilal Omar Adeel Kamran Tariq Zain Amir Arif Asif Rizwan Shahid Faisal Hamza Ibrahim
    Yusuf Abdul Rajesh Sanjay Vikram Arjun Ravi Harpreet Gurpreet Jaswinder Manpreet Sukhdeep
    Kwame Kofi Emmanuel Chinedu Tunde Olu Ade Femi Segun Delroy Leroy Winston Marcus Tyrone Jermaine
    Dwayne Andre Kai Tariq Tomasz Piotr Krzysztof Pawel Marcin Lukasz Jakub Andrei Mihai Ionut
    Florin Darius Aurelijus Mindaugas Valentin Sergei Dmitri Patrick Declan Ciaran Niall Conor
    Brendan Eoin Rhys Dylan Gareth Owen Dafydd Huw Ewan Fraser Alistair Angus Hamish Graham Neil
    Keith Colin Derek Trevor Terry Barry Roy Philip Stuart Nicholas Timothy Jonathan Edward Henry
    Harrison Mason Ethan Finley Leon Jay Jordan Ricky Danny Billy Tony Mick Frankie Elliot Max
    Toby Owen Cameron Declan Joel Reuben Nathaniel Isaac Jacob Noah Leo Archie Alfie Freddie
    Theo Louis Stanley Ronnie Tommy Sonny Harvey Lenny Mohamed Abdi Hussein Yasin Dawit Mehmet
    Emre Murat Kemal Giorgos Marco Luca Paolo Carlos Diego Miguel Jose Rui Tiago Joao Hugo
    """.split()
)

FEMALE_FORENAMES: tuple[str, ...] = tuple(
    """
    Sarah Emma Laura Rebecca Gemma Claire Nicola Lisa Michelle Kelly Amy Hannah Jessica Stacey
    Samantha Danielle Natalie Victoria Rachel Charlotte Louise Jennifer Kirsty Leanne Jade
    Chloe Sophie Lauren Amber Megan Bethany Shannon Courtney Paige Kayleigh Zoe Joanne Donna
    Tracey Karen Julie Susan Helen Angela Dawn Sharon Jacqueline Deborah Elaine Caroline Katie
    Holly Georgia Ellie Abigail Lucy Olivia Emily Grace Ella Jasmine Molly Mia Lily Ruby Isla
    Poppy Evie Freya Isabella Millie Daisy Phoebe Scarlett Tia Keeley Leah Kerry Hayley Stephanie
    Fatima Aisha Ayesha Zainab Maryam Sana Amina Nadia Shazia Farah Rukhsana Nazia Saima Yasmin
    Hina Bushra Samina Priya Anjali Pooja Sunita Neha Kiran Harjit Manjit Rajinder Amrit
    Simran Navdeep Abena Ama Grace Blessing Chioma Ngozi Funmi Folake Adwoa Shanice Shantelle
    Marcia Beverley Yvonne Precious Natasha Kezia Anna Agnieszka Katarzyna Magdalena Joanna
    Monika Aleksandra Ewa Justyna Ioana Elena Andreea Maria Alina Irina Olga Siobhan Aoife
    Niamh Ciara Roisin Orla Sinead Bronwen Cerys Ffion Rhian Seren Eilidh Fiona Morag Kirsteen
    Heather Alison Lorraine Janet Linda Carol Patricia Margaret Christine Wendy Gillian Jane
    Catherine Elizabeth Alice Florence Harriet Matilda Imogen Eleanor Rosie Esme Erin Kayla
    Skye Demi Chantelle Jodie Kimberley Toni Carly Vicky Becky Jenna Kara Tanya Sadia Hodan
    Fadumo Sagal Hamdi Leyla Zeynep Elif Ayse Sofia Giulia Ana Ines Beatriz Marta Lucia Carmen
    """.split()
)

SURNAMES: tuple[str, ...] = tuple(
    """
    Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson
    Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson
    Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen
    James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook
    Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson
    Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Ali
    Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell
    Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur
    Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks
    West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton OBrien Watts Rose Booth
    Perry Ryan Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster
    Hunter Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland
    Hawkins Harding Porter Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah
    Dean Lane Cooke Bates Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross
    Cross Long Freeman Warren Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis
    Hopkins OConnor Harper Coleman Watkins Moss McCarthy Chambers ONeill Griffin Sharp Hardy
    Wheeler Potter Osborne Johnston Gordon Doyle Wallace George Jordan Hutchinson Rahman Akhtar
    Mahmood Iqbal Aziz Malik Rashid Hassan Mohammed Chaudhry Sharma Kumar Mistry Chauhan Sandhu
    Gill Dhillon Bains Sidhu Okafor Mensah Boateng Owusu Asante Adeyemi Okoro Oyelaran Adebayo
    Nwosu Eze Clarke Campbell Grant Francis Brown Nowak Kowalski Wisniewski Wojcik Kaminski
    Lewandowski Zielinski Szymanski Popescu Ionescu Popa Kazlauskas Petrov Ivanov Yilmaz Demir
    Kaya Mohamud Abdullahi Warsame Farah Rossi Russo Silva Santos Ferreira Pereira Costa
    Rodrigues Fernandes Gonzalez Garcia Lopez Murphy Kelly Doherty Quinn Gallagher Brennan
    MacLeod MacDonald MacKenzie Fraser Sinclair Munro Cameron Ferguson Douglas Hamilton Reid
    Llewellyn Pritchard Prosser Vaughan Bevan Jenkins Meredith Howells Jarvis Holt Goodwin
    Barlow Slater Buckley Lambert Kirby Charlton Brady Moran Flynn Nolan Fowler Rowe Bull
    Smith-Jones Ward-Thomas Lloyd-Davies Hughes-Williams Taylor-Brown Price-Evans Khan-Ali
    Morgan-Reed Clarke-Hall Owen-Jones
    """.split()
)

# Two spellings that lose their apostrophe in the whitespace-split list above.
_APOSTROPHE_NAMES = {"OBrien": "O'Brien", "OConnor": "O'Connor", "ONeill": "O'Neill"}


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_APOSTROPHE_NAMES.get(name, name) for name in names))


MALE_FORENAMES = _unique(MALE_FORENAMES)
FEMALE_FORENAMES = _unique(FEMALE_FORENAMES)
SURNAMES = _unique(SURNAMES)


def zipf_weights(count: int, exponent: float = 0.9) -> np.ndarray:
    """Selection probabilities falling with rank, like real name frequencies."""
    weights = 1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def draw_name_codes(rng: np.random.Generator, count: int, list_length: int) -> np.ndarray:
    """Indices into a name list, common names first in the list drawn most often."""
    cumulative = np.cumsum(zipf_weights(list_length))
    codes = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    return np.minimum(codes, list_length - 1).astype(np.int32)
