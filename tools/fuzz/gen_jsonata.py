#!/usr/bin/env python3
"""gen_jsonata.py: random JSONata expressions in a change node (functions, operators, context, env).

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_jsonata.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
atoms=["payload","payload.a","payload[0]","topic","n","$flowContext('k')","$globalContext('g')","$env('EV')","1.5","0.1","3","'abc'","[1,2,3]","{'x':1}","null","true","$$.payload","%"]
unary=["$string(%s)","$number(%s)","$count(%s)","$sum(%s)","$type(%s)","$exists(%s)","$boolean(%s)","$not(%s)","$keys(%s)","$length($string(%s))","$uppercase($string(%s))","$round(%s, 1)","$abs(%s)","$floor(%s)","$sqrt(%s)","$formatNumber(%s, '#,##0.00')","$reverse(%s)","$distinct(%s)","$sort(%s)","[%s]","{'k': %s}","%s[0]","%s.a","$substring($string(%s), 1, 2)","$split($string(%s), ',')","$join($map(%s, $string), '-')","$pad($string(%s), 6, '*')","$formatInteger(%s, '000')","$power(%s, 2)","$append(%s, 9)","$lookup(%s, 'a')","$spread(%s)","$each(%s, function($v,$k){$k})","$min(%s)","$max(%s)","$average(%s)","-%s","%s ? 'y' : 'n'","$contains($string(%s), 'a')","$replace($string(%s), /[0-9]/, '#')","$match($string(%s), /a/)","$trim($string(%s))","$base64encode($string(%s))","$fromMillis(%s)","$formatBase(%s, 2)","$string(%s, true)","$zip(%s, [1])"]
binary=["%s + %s","%s - %s","%s * %s","%s / %s","%s %% %s","%s & %s","%s = %s","%s != %s","%s < %s","%s > %s","%s and %s","%s or %s","%s in %s","[%s, %s]","$merge([{'a':%s},{'b':%s}])","$append(%s, %s)"]
def expr(d=0):
    r=random.random()
    if d>2 or r<0.3: return random.choice(atoms[:-1])
    if r<0.7: return random.choice(unary)%expr(d+1)
    return random.choice(binary)%(expr(d+1),expr(d+1))
PAY=[1,2.5,-3,"abc","a,b",[1,2,3],[3,1,2,1],{"a":1,"b":"x"},{"a":[1,2]},None,True,"",0,1e21,0.1,[],{}, "12"]
cases=[]
for i in range(N):
    e=expr()
    ch={"id":"c1","type":"change","name":"","rules":[{"t":"set","p":"payload","pt":"msg","to":e,"tot":"jsonata"}],"action":"","property":"","from":"","to":"","reg":False,"wires":[["h1"]]}
    steps=[]
    for j in range(3):
        steps.append({"send":{"node":"c1","msg":{"payload":random.choice(PAY),"topic":random.choice(["t","5"]),"n":j}}}); steps.append({"wait":5})
    cases.append({"name":"jsonata %d: %s"%(i,e[:60]),"flow":[ch,{"id":"h1","type":"helper","wires":[]}],"env":{"EV":"7"},
                  "context":{"flow":{"k":random.choice([2,"s",[1]])},"global":{"g":random.choice([3,"t"])}},"steps":steps})
json.dump({"suite":"jsonata-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
