"""A form that uses what exports must lay out (groups, a repeat with a nested repeat, a geopoint,
select_one and select_multiple with labels in two languages, numbers, a photo, meta), shared by
the export tests."""

from __future__ import annotations

XFORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head>
    <h:title>Household survey</h:title>
    <model>
      <itext>
        <translation lang="English (en)" default="true()">
          <text id="/data/name:label"><value>Name</value></text>
          <text id="/data/tenure:label"><value>Tenure</value></text>
          <text id="tenure-own"><value>Owned</value></text>
          <text id="tenure-rent"><value>Rented</value></text>
        </translation>
        <translation lang="French (fr)">
          <text id="/data/name:label"><value>Nom</value></text>
          <text id="/data/tenure:label"><value>Statut</value></text>
          <text id="tenure-own"><value>Proprietaire</value></text>
          <text id="tenure-rent"><value>Locataire</value></text>
        </translation>
      </itext>
      <instance>
        <data id="household_survey" version="v1">
          <name/>
          <age/>
          <weight/>
          <location/>
          <colours/>
          <tenure/>
          <photo/>
          <grp><inner/><sub><deep/></sub></grp>
          <hh>
            <member jr:template=""><mname/><mage/><pets jr:template=""><pet/></pets></member>
          </hh>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <instance id="colours">
        <root>
          <item><name>red</name><label>Red</label></item>
          <item><name>green</name><label>Green</label></item>
          <item><name>blue</name><label>Blue</label></item>
        </root>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/weight" type="decimal"/>
      <bind nodeset="/data/location" type="geopoint"/>
      <bind nodeset="/data/colours" type="string"/>
      <bind nodeset="/data/tenure" type="string"/>
      <bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/grp/inner" type="string"/>
      <bind nodeset="/data/grp/sub/deep" type="string"/>
      <bind nodeset="/data/hh/member/mname" type="string"/>
      <bind nodeset="/data/hh/member/mage" type="int"/>
      <bind nodeset="/data/hh/member/pets/pet" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label ref="jr:itext('/data/name:label')"/></input>
    <input ref="/data/age"><label>Age</label></input>
    <input ref="/data/weight"><label>Weight (kg)</label></input>
    <input ref="/data/location"><label>Location</label></input>
    <select ref="/data/colours"><label>Colours</label>
      <itemset nodeset="instance('colours')/root/item"><value ref="name"/><label ref="label"/></itemset>
    </select>
    <select1 ref="/data/tenure"><label ref="jr:itext('/data/tenure:label')"/>
      <item><label ref="jr:itext('tenure-own')"/><value>own</value></item>
      <item><label ref="jr:itext('tenure-rent')"/><value>rent</value></item>
    </select1>
    <upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>
    <group ref="/data/grp"><label>Group</label>
      <input ref="/data/grp/inner"><label>Inner</label></input>
      <group ref="/data/grp/sub"><input ref="/data/grp/sub/deep"><label>Deep</label></input></group>
    </group>
    <group ref="/data/hh"><label>Household</label>
      <group ref="/data/hh/member"><label>Member</label>
        <repeat nodeset="/data/hh/member">
          <input ref="/data/hh/member/mname"><label>Member name</label></input>
          <input ref="/data/hh/member/mage"><label>Member age</label></input>
          <group ref="/data/hh/member/pets"><label>Pets</label>
            <repeat nodeset="/data/hh/member/pets">
              <input ref="/data/hh/member/pets/pet"><label>Pet</label></input>
            </repeat>
          </group>
        </repeat>
      </group>
    </group>
  </h:body>
</h:html>"""


def submission_xml(instance_id: str, body: str, version: str = "v1") -> bytes:
    """A submission of the form above (`body` is the XML between the root's children)."""
    return (
        f'<data id="household_survey" version="{version}">{body}'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()
